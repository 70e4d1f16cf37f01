"""The dashboard in a real browser: Debian's chromium driven by playwright (``executable_path``)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from chalicelib import runtime
from fila.local.running import Stack
from tests.e2e.test_processing import deliver, script, wait_for
from tests.signing import standard_delivery

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]  # one worker: one session stack
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
# As the machine's own probe runs it: headless, and none of chromium's background calls home.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


def sign_in(page: Page, base: str, hash: str = "") -> None:
    page.goto(f"{base}/admin{hash}")
    page.fill("#token", "fila-local-admin")
    page.click("#login-form button")
    if not hash:
        expect(page.locator("#queues .card")).to_have_count(4)


def shot(page: Page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / name), full_page=True)


def test_find_a_failed_job_read_its_trace_retry_it_and_see_it_complete(on_stack: Stack, browser: Browser) -> None:
    script(on_stack, "crm", then=500)
    email = f"barbara+{time.time_ns()}@example.com"
    event_id = deliver(on_stack, "standard", *standard_delivery(
        {"type": "customer.updated", "data": {"email": email, "name": "Barbara Liskov"}}))
    job_id = f"standard#{event_id}:update-crm"
    wait_for(lambda: (job := runtime.system().jobs.get(job_id)) is not None and job.status == "failed")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, on_stack.base)
    page.click("#nav a[data-view=dlq]")  # the dead-letter view lists the failed job
    expect(page.locator('section[data-dlq="default"]')).to_contain_text("update-crm")
    page.click("#nav a[data-view=jobs]")
    page.click("#tabs a[data-status=failed]")
    assert page.url.endswith("#/jobs?status=failed")
    row = page.locator(f'#jobs tr[data-job="{job_id}"]')
    expect(row).to_be_visible()
    row.click()
    expect(page.locator("#job-status")).to_have_text("failed")
    traces = page.locator("#detail pre.trace")
    expect(traces).to_have_count(3)
    expect(traces.last).to_contain_text("ConnectionError")
    expect(page.locator("#detail")).to_contain_text("answered 500")
    expect(page.locator("#job-logs")).to_contain_text("contact saved; calling the CRM")

    script(on_stack, "crm", then=200)  # the CRM recovers
    page.click(f'#detail button[data-retry="{job_id}"]')
    expect(page.locator("#job-status")).to_have_text("completed", timeout=30_000)
    expect(page.locator("#job-logs")).to_contain_text("the CRM accepted the contact")
    shot(page, "dashboard-job.png")
    shared = page.url  # a link to the job, opened again: the same page, no second token prompt
    page.goto(f"{on_stack.base}/admin#/queues")
    page.goto(shared)
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#login")).to_be_hidden()

    page.goto(f"{on_stack.base}/admin#/jobs?status=completed")
    page.select_option("#queue-filter", "default")
    expect(page.locator(f'#jobs tr[data-job="{job_id}"]')).to_be_visible()
    page.select_option("#queue-filter", "email")
    expect(page.locator(f'#jobs tr[data-job="{job_id}"]')).to_have_count(0)
    page.goto(f"{on_stack.base}/admin#/dlq/default")  # retried: its old DLQ message is not dead
    expect(page.locator('section[data-dlq="default"]')).not_to_contain_text(job_id)
    page.close()


def test_pause_a_lane_watch_its_charts_and_clean_it(on_stack: Stack, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, on_stack.base)
    page.click('#queues button[data-pause="email"]')
    expect(page.locator('#queues .card[data-queue="email"] .badge.paused')).to_be_visible()
    assert runtime.system().lanes.paused(["email"]) == {"email"}
    page.click('#queues button[data-resume="email"]')
    expect(page.locator('#queues .card[data-queue="email"] .badge.paused')).to_have_count(0)

    email = f"ada+{time.time_ns()}@example.com"
    deliver(on_stack, "standard", *standard_delivery({"type": "customer.updated", "data": {"email": email}}))
    page.click('#queues .card[data-queue="default"] h3 a')
    assert page.url.endswith("#/queues/default")
    expect(page.locator("#charts .chart")).to_have_count(4)
    expect(page.locator("#charts svg polyline")).to_have_count(8)
    last_hour = page.locator("section", has_text="Last hour")
    wait_for(lambda: re.search(r"\b[1-9]\d* completed", last_hour.inner_text()) is not None, timeout=30)
    shot(page, "dashboard-lane.png")
    page.select_option("#clean-age", "0")
    page.click("#clean-form button")
    expect(page.locator("#toast")).to_contain_text("completed job(s) removed")
    page.goto(f"{on_stack.base}/admin#/queues")
    expect(page.locator("#queues .card")).to_have_count(4)
    shot(page, "dashboard.png")
    page.close()


def test_a_wrong_token_is_refused_and_asked_again(on_stack: Stack, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(f"{on_stack.base}/admin")
    page.fill("#token", "not-the-token")
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_have_text("That token was refused.")
    expect(page.locator("#login")).to_be_visible()
    page.close()


@pytest.mark.parametrize("view", ["#/queues", "#/jobs", "#/dlq", "#/schedules", "#/outbox", "#/queues/high"])
def test_every_view_is_readable_on_a_phone(on_stack: Stack, browser: Browser, view: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    sign_in(page, on_stack.base, view)
    expect(page.locator("main section").first).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Not found")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{view} scrolls sideways ({width}px)"
    if view == "#/queues":
        shot(page, "dashboard-phone.png")
    page.close()
