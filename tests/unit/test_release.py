"""make deploy's checks that need no AWS: stage names, concrete policies, how failures are reported."""

from __future__ import annotations

import subprocess

import pytest

from fila import cli, release
from fila.deploy import policy_document


@pytest.mark.parametrize("stage", ["local", "local-mine", "bad_name", "x" * 21, ""])
def test_stages_that_cannot_be_deployed_are_refused(stage: str) -> None:
    with pytest.raises(release.DeployError):
        release.check_stage(stage)


@pytest.mark.parametrize("stage", ["dev", "prod", "e2e-1a2b3c4d", "staging2"])
def test_ordinary_stages_pass(stage: str) -> None:
    release.check_stage(stage)


def test_a_policy_file_names_this_account_and_region_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILA_STAGE", "dev")
    document = release.concrete(policy_document("consume_high"), "eu-west-1", "111122223333")
    text = str(document)
    assert "Fn::Sub" not in text and "${" not in text
    resources = [r for statement in document["Statement"] for r in statement["Resource"]]
    assert all(r.startswith("arn:aws:") for r in resources)
    assert all(":eu-west-1:111122223333:" in r for r in resources if not r.startswith("arn:aws:s3:::"))
    assert "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/fila-dev-consume_high" in resources


def test_a_failed_chalice_step_is_reported_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def fail(stage: str) -> None:
        raise subprocess.CalledProcessError(2, ["python", "-m", "chalice", "--project-dir", "p", "deploy"])

    monkeypatch.setattr(release, "deploy", fail)
    assert cli.main(["deploy", "--stage", "dev"]) == 1
    assert "failed (exit 2)" in capsys.readouterr().err


def test_a_refused_deploy_exits_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["destroy", "--stage", "local"]) == 2
    assert "public local secrets" in capsys.readouterr().err
