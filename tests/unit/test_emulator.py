"""Which AWS endpoint the local stack uses."""

from __future__ import annotations

import pytest

from fila.local.emulator import DEFAULT_ENDPOINT, endpoint


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
