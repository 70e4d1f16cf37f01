"""Secrets outside the local stage: SSM SecureStrings, read once per container, refreshed for rotation."""

from __future__ import annotations

import boto3
import pytest

from chalicelib import credentials
from chalicelib.errors import Unavailable
from tests.helpers import use_stage


def test_a_deployed_stage_reads_ssm_never_the_local_defaults(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    use_stage("qa")
    try:
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "from-env-must-not-be-used")
        ssm = boto3.client("ssm")
        ssm.put_parameter(Name="/fila/qa/STRIPE_WEBHOOK_SECRET", Value="whsec_old,whsec_new", Type="SecureString",
                          Overwrite=True)
        reads: list[str] = []
        from chalicelib import aws
        aws.client("ssm").meta.events.register("before-call.ssm.GetParameter", lambda **_: reads.append("get"))
        assert credentials.secrets("STRIPE_WEBHOOK_SECRET") == ("whsec_old", "whsec_new")
        assert credentials.secrets("STRIPE_WEBHOOK_SECRET") == ("whsec_old", "whsec_new")
        assert reads == ["get"]  # once per container…
        ssm.put_parameter(Name="/fila/qa/STRIPE_WEBHOOK_SECRET", Value="whsec_new", Type="SecureString", Overwrite=True)
        clock = [1e9]
        monkeypatch.setattr(credentials, "clock", lambda: clock[0])
        credentials.forget()
        assert credentials.secrets("STRIPE_WEBHOOK_SECRET") == ("whsec_new",)
        clock[0] += credentials.REFRESH_SECONDS + 1  # …and again after a while: a rotation reaches warm containers
        ssm.put_parameter(Name="/fila/qa/STRIPE_WEBHOOK_SECRET", Value="whsec_newer", Type="SecureString", Overwrite=True)
        assert credentials.secrets("STRIPE_WEBHOOK_SECRET") == ("whsec_newer",)
        with pytest.raises(Unavailable, match="ADMIN_TOKEN"):
            credentials.secrets("ADMIN_TOKEN")  # never falls back to the local default (503, not a 500)
    finally:
        use_stage("local")
