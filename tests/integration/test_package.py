"""The AWS artifact: `chalice package` merged with infra/, checked by the tools AWS users trust."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from chalice.app import EventSourceHandler

from chalicelib.resources import declaration, lanes, tables

BIN = Path(sys.executable).parent
# With the deploy tests: one worker builds chalice's dependency zip once (a fresh clone has no cache;
# two workers building it at once both pay for pip).
pytestmark = pytest.mark.xdist_group("deploy")


@pytest.fixture(scope="session")  # not module: xdist may interleave other modules, packaging again each time
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package")
    subprocess.run([str(BIN / "fila"), "package", "--stage", "dev", "--out", str(out)], check=True,
                   capture_output=True)
    return out / "package"


@pytest.fixture(scope="session")
def template(package: Path) -> dict[str, Any]:
    path = package / "sam.json"
    lint = subprocess.run([str(BIN / "cfn-lint"), str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def _snake(logical: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in logical).lstrip("_")


def _sqs_events(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, event) for name, fn in _functions(template).items()
            for event in fn["Properties"].get("Events", {}).values() if event["Type"] == "SQS"]


def test_every_compiled_dependency_is_a_manylinux_wheel_lambda_can_load(package: Path) -> None:
    """A wheel chalice built here (tag linux_x86_64) links this machine's libraries, which Lambda's Amazon
    Linux 2 lacks: it imports locally and fails on AWS. Only pure or manylinux2014 (glibc 2.17) wheels."""
    with zipfile.ZipFile(package / "layer-deployment.zip") as layer:
        wheels = {name.split("/")[-2]: layer.read(name).decode() for name in layer.namelist()
                  if name.endswith(".dist-info/WHEEL")}
    assert "pillow" in " ".join(wheels).lower()  # the one compiled dependency that has gone wrong
    tags = {dist: [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Tag: ")]
            for dist, text in wheels.items()}
    assert not {dist: t for dist, t in tags.items() if not all(map(_loads_on_amazon_linux_2, t))}


LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _loads_on_amazon_linux_2(tag: str) -> bool:
    """A wheel tag Lambda's python3.11 runtime can load: pure, or manylinux for glibc 2.26 or older."""
    platform = tag.rsplit("-", 1)[-1]
    if platform == "any":
        return True
    name = platform.removesuffix("_x86_64")
    if name in LEGACY:
        return True
    parts = name.split("_")  # manylinux_<major>_<minor>
    return parts[0] == "manylinux" and len(parts) == 3 and (int(parts[1]), int(parts[2])) <= (2, 26)


def test_every_sqs_event_source_reports_batch_item_failures(template: dict[str, Any]) -> None:
    events = _sqs_events(template)
    assert len(events) == len(lanes())
    for name, event in events:
        assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name


def test_visibility_timeout_is_at_least_six_times_the_consumer_timeout(template: dict[str, Any]) -> None:
    queues = {r["Properties"]["QueueName"]: r["Properties"] for r in template["Resources"].values()
              if r["Type"] == "AWS::SQS::Queue"}
    for name, event in _sqs_events(template):
        queue_name = event["Properties"]["Queue"]["Fn::Sub"].rsplit(":", 1)[1]
        timeout = _functions(template)[name]["Properties"]["Timeout"]
        assert queues[queue_name]["VisibilityTimeout"] >= 6 * timeout, queue_name
        assert int(queues[queue_name]["RedrivePolicy"]["maxReceiveCount"]) >= 5


def test_every_infra_resource_is_in_the_template_with_its_stage_name(template: dict[str, Any]) -> None:
    by_type: dict[str, set[str]] = {}
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        name = props.get("QueueName") or props.get("TableName") or props.get("BucketName")
        if name:
            by_type.setdefault(resource["Type"], set()).add(name)
    assert by_type["AWS::SQS::Queue"] == {f"fila-dev-{q}{s}" for q in lanes() for s in ("", "-dlq")}
    assert by_type["AWS::DynamoDB::Table"] == {f"fila-dev-{t}" for t in tables()}
    assert by_type["AWS::S3::Bucket"] == {f"fila-dev-{b}" for b in declaration()["buckets"]}


def test_every_handler_string_names_a_lambda_entry_point(template: dict[str, Any]) -> None:
    for name, fn in _functions(template).items():
        module, _, attr = fn["Properties"]["Handler"].rpartition(".")
        target = getattr(importlib.import_module(module), attr)
        if name != "APIHandler":
            assert isinstance(target, EventSourceHandler), name


def test_every_function_has_its_own_least_privilege_role(template: dict[str, Any]) -> None:
    from fila.deploy import POLICIES

    roles = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    for name, fn in _functions(template).items():
        role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        (policy,) = roles[role]["Properties"]["Policies"]
        actions = {a for s in policy["PolicyDocument"]["Statement"] for a in s["Action"]}
        assert not any("*" in a for a in actions), name
        assert all(r != "*" for s in policy["PolicyDocument"]["Statement"] for r in s["Resource"]
                   if s["Action"] != ["lambda:ListEventSourceMappings"]), name  # IAM grants it on "*" only
        assert len(actions) > 3, f"{name} has only {actions}"
    assert len(roles) == len(POLICIES)


def test_alarms_for_dlq_depth_and_oldest_message_age_on_every_queue(template: dict[str, Any]) -> None:
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    by_queue = {(a["Dimensions"][0]["Value"], a["MetricName"]): a for a in alarms}
    for queue in lanes():
        depth = by_queue[(f"fila-dev-{queue}-dlq", "ApproximateNumberOfMessagesVisible")]
        assert depth["Threshold"] == 0 and depth["ComparisonOperator"] == "GreaterThanThreshold"
        age = by_queue[(f"fila-dev-{queue}", "ApproximateAgeOfOldestMessage")]
        assert age["Threshold"] > 0


def test_functions_are_named_for_their_stage_with_retained_logs(template: dict[str, Any]) -> None:
    groups = {r["Properties"]["LogGroupName"]: r["Properties"] for r in template["Resources"].values()
              if r["Type"] == "AWS::Logs::LogGroup"}
    for name, fn in _functions(template).items():
        function_name = fn["Properties"]["FunctionName"]  # as `chalice deploy` names it: one scheme
        assert function_name == ("fila-dev" if name == "APIHandler" else f"fila-dev-{_snake(name)}"), name
        assert groups[f"/aws/lambda/{function_name}"]["RetentionInDays"] == 14


def test_every_schedule_is_an_eventbridge_rule_with_its_expression(template: dict[str, Any]) -> None:
    schedules = {name: event["Properties"]["Schedule"] for name, fn in _functions(template).items()
                 for event in fn["Properties"].get("Events", {}).values() if event["Type"] == "Schedule"}
    assert schedules == {"RecoverySweep": "rate(1 minute)", "SyncCrm": "cron(0 * * * ? *)"}


def test_prod_reserves_concurrency_per_consumer(tmp_path: Path) -> None:
    subprocess.run([str(BIN / "fila"), "package", "--stage", "prod", "--out", str(tmp_path)], check=True,
                   capture_output=True)
    template = json.loads((tmp_path / "package" / "sam.json").read_text())
    reserved = {k: v["Properties"].get("ReservedConcurrentExecutions") for k, v in template["Resources"].items()
                if v["Type"] == "AWS::Serverless::Function" and k.startswith("Consume")}
    assert reserved == {"ConsumeHigh": 20, "ConsumeDefault": 10, "ConsumeEmail": 5, "ConsumeMaintenance": 2}
