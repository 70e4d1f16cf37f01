"""Local stages read their secrets from the environment only, and never run on Lambda."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import credentials
from chalicelib.errors import Unavailable
from tests.helpers import use_stage


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    credentials.forget()
    yield
    credentials.forget()
    use_stage("local")


def test_a_local_stage_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b")
    use_stage("local-dev")
    assert credentials.secrets("STRIPE_WEBHOOK_SECRET") == ("whsec_a", "whsec_b")


@pytest.mark.parametrize("value", [None, "", " , "])
def test_a_local_stage_without_the_secret_answers_unavailable(monkeypatch: pytest.MonkeyPatch,
                                                              value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("ADMIN_TOKEN")
    else:
        monkeypatch.setenv("ADMIN_TOKEN", value)
    with pytest.raises(Unavailable, match="ADMIN_TOKEN"):
        credentials.secrets("ADMIN_TOKEN")


def test_a_local_stage_on_lambda_refuses_its_public_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fila-local-APIHandler")
    with pytest.raises(Unavailable):
        credentials.secrets("ADMIN_TOKEN")  # present in the environment, and still refused


def test_no_stage_means_no_resource_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.settings import StageNotSet, resource_name

    monkeypatch.delenv("FILA_STAGE")
    with pytest.raises(StageNotSet):
        resource_name("events")
