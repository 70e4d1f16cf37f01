"""Which AWS endpoint the local stack uses."""

from __future__ import annotations

import os
import shutil

import pytest

from fila.local.emulator import DEFAULT_ENDPOINT, endpoint
from fila.local.running import Stack


@pytest.mark.parametrize(("env", "expected"), [
    ({}, DEFAULT_ENDPOINT),
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, "http://127.0.0.1:5000"),
    ({"LOCALSTACK_HOST": "localhost.localstack.cloud:4566"}, "http://localhost.localstack.cloud:4566"),
    ({"LOCALSTACK_HOST": "localstack"}, "http://localstack:4566"),
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "LOCALSTACK_HOST": "localstack"}, "http://127.0.0.1:5000"),
])
def test_endpoint(env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LOCALSTACK_HOST", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert endpoint() == expected


def test_a_stack_calls_its_own_fakes_whatever_targets_its_caller_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bench that set CRM_API_URL for its own stage (fakes on another port) must not hand it on: the
    stack's CRM and Slack calls would go nowhere and its jobs would retry instead of running."""
    monkeypatch.setenv("CRM_API_URL", "http://127.0.0.1:8000/_fakes/crm")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://127.0.0.1:8000/_fakes/slack")
    monkeypatch.setenv("FILA_SOMETHING", "kept")
    stacks = [Stack(), Stack(CRM_API_URL="http://127.0.0.1:9999/crm")]
    try:
        assert "CRM_API_URL" not in stacks[0].env and "SLACK_WEBHOOK_URL" not in stacks[0].env
        assert stacks[0].env["FILA_SOMETHING"] == "kept"
        assert stacks[1].env["CRM_API_URL"] == "http://127.0.0.1:9999/crm"  # unless given on purpose
    finally:
        for stack in stacks:
            stack.log.close()
            os.unlink(stack.log.name)
            shutil.rmtree(stack.env["FILA_STATE_DIR"], ignore_errors=True)
