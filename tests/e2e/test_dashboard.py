"""The dashboard in a real browser: Debian's chromium driven by playwright (``executable_path``)."""

from __future__ import annotations

import os
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


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/admin")
    page.fill("#token", "fila-local-admin")
    page.click("#login-form button")
    expect(page.locator("#queues .card")).to_have_count(4)


def test_find_a_failed_job_read_its_trace_retry_it_and_see_it_complete(on_stack: Stack, browser: Browser) -> None:
    script(on_stack, "crm", then=500)
    email = f"barbara+{time.time_ns()}@example.com"
    event_id = deliver(on_stack, "standard", *standard_delivery(
        {"type": "customer.updated", "data": {"email": email, "name": "Barbara Liskov"}}))
    job_id = f"standard#{event_id}:update-crm"
    wait_for(lambda: (job := runtime.system().jobs.get(job_id)) is not None and job.status == "failed")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, on_stack.base)
    page.click("#tabs button[data-status=failed]")
    row = page.locator(f'#jobs tr[data-job="{job_id}"]')
    expect(row).to_be_visible()
    row.click()
    expect(page.locator("#job-status")).to_have_text("failed")
    traces = page.locator("#detail pre.trace")
    expect(traces).to_have_count(3)
    expect(traces.last).to_contain_text("ConnectionError")
    expect(page.locator("#detail")).to_contain_text("answered 500")

    script(on_stack, "crm", then=200)  # the CRM recovers
    page.click(f'#detail button[data-retry="{job_id}"]')
    expect(page.locator("#job-status")).to_have_text("completed", timeout=30_000)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "dashboard-job.png"), full_page=True)
    page.click("#tabs button[data-status=completed]")
    page.select_option("#queue-filter", "default")
    expect(page.locator(f'#jobs tr[data-job="{job_id}"]')).to_be_visible()
    page.select_option("#queue-filter", "email")
    expect(page.locator(f'#jobs tr[data-job="{job_id}"]')).to_have_count(0)
    page.select_option("#queue-filter", "")
    page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)
    page.close()


def test_a_wrong_token_is_refused_and_asked_again(on_stack: Stack, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(f"{on_stack.base}/admin")
    page.fill("#token", "not-the-token")
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_have_text("That token was refused.")
    expect(page.locator("#login")).to_be_visible()
    page.close()


def test_readable_on_a_phone(on_stack: Stack, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    sign_in(page, on_stack.base)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width}px)"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "dashboard-phone.png"), full_page=True)
    page.close()
