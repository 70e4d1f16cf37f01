"""``make deploy`` / ``make destroy``: a stage on AWS (or on whatever ``AWS_ENDPOINT_URL`` names).

Three parts, each owned by the tool made for it:
1. stack ``fila-<stage>-infra`` (plain CloudFormation from infra/): queues and DLQs, tables, the
   bucket, alarms, log groups; the tables and the bucket are retained when it goes;
2. ``chalice deploy``: functions, the API, event sources, schedules; each function with its own role
   and policy (``fila.deploy.POLICIES``, made concrete for this account and region);
3. what neither sets, on every SQS mapping, read back and checked: ``ReportBatchItemFailures`` (without
   it a reported retry is deleted with its batch) and the lane's maximum concurrency.

Chalice runs in a project folder made for the stage (build/deploy/<stage>: links to the code, a config
naming the stage and its policy files), so the committed ``.chalice/config.json`` stays as it is; its
record of what it deployed is kept in the repository's ``.chalice/deployed/`` (ignored by git).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from chalicelib import resources
from chalicelib.settings import is_local, resource_name
from fila import ROOT, chalice_config
from fila.deploy import POLICIES, function_name, policy_document, resource_template
from fila.local.defaults import SECRETS

CHALICE_STATE = ("deployed", "deployments")  # kept in the repository's .chalice/, shared by the runs


class DeployError(RuntimeError):
    """The stage cannot be deployed as asked; the message says why and what to do."""


def infra_stack(stage: str) -> str:
    return f"fila-{stage}-infra"


def check_stage(stage: str) -> None:
    if is_local(stage):
        raise DeployError(f"stage {stage!r} is local: it uses the public local secrets and is never deployed")
    if not stage.replace("-", "").isalnum() or len(stage) > 20:
        raise DeployError(f"stage {stage!r}: use letters, digits and '-', at most 20 characters")


def missing_secrets(stage: str) -> list[str]:
    import boto3

    names = [f"/fila/{stage}/{name}" for name in SECRETS]
    found = boto3.client("ssm").get_parameters(Names=names)["Parameters"]
    return sorted(set(names) - {p["Name"] for p in found})


def deploy(stage: str) -> dict[str, Any]:
    os.environ["FILA_STAGE"] = stage
    check_stage(stage)
    missing = missing_secrets(stage)
    if missing:
        raise DeployError("missing SSM SecureStrings (put them first, see the README): " + ", ".join(missing))
    orphans = kept_without_stack(stage)
    if orphans:
        raise DeployError(
            f"{', '.join(orphans)} exist without stack {infra_stack(stage)} (kept by an earlier destroy); "
            "CloudFormation cannot create them again: import them into the stack (CloudFormation console, "
            "'Import resources into stack') or, if their data may go, delete them, then deploy again")
    stack = apply_stack(infra_stack(stage), {
        "AWSTemplateFormatVersion": "2010-09-09", "Resources": resource_template(),
        "Description": f"fila {stage}: queues, tables, bucket, alarms, logs (chalice deploy owns the rest)"})
    chalice(stage, "deploy", "--stage", stage)
    mappings = configure_mappings()
    deployed = json.loads((ROOT / ".chalice" / "deployed" / f"{stage}.json").read_text())
    api = next((r["rest_api_url"] for r in deployed["resources"] if r.get("resource_type") == "rest_api"),
               None)
    return {"stage": stage, "infra": stack, "api": api, "mappings": mappings,
            "webhooks": f"{api.rstrip('/')}/webhooks/{{stripe,github,shopify,standard}}" if api else None}


def destroy(stage: str) -> dict[str, Any]:
    import boto3

    os.environ["FILA_STAGE"] = stage
    check_stage(stage)
    removed = []
    if (ROOT / ".chalice" / "deployed" / f"{stage}.json").exists():
        chalice(stage, "delete", "--stage", stage)
        removed.append(f"chalice app fila-{stage}")
    cfn = boto3.client("cloudformation")
    stack = infra_stack(stage)
    if _stack_status(cfn, stack) is not None:
        cfn.delete_stack(StackName=stack)
        cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig={"Delay": 2})
        removed.append(stack)
    kept = [resource_name(key) for key in (*resources.tables(), *resources.declaration()["buckets"])]
    return {"stage": stage, "removed": removed, "kept": kept}


def kept_without_stack(stage: str) -> list[str]:
    """The tables and bucket a destroy kept, when the infra stack that made them is gone."""
    import boto3
    from botocore.exceptions import ClientError

    if _stack_status(boto3.client("cloudformation"), infra_stack(stage)) is not None:
        return []
    ddb, s3, found = boto3.client("dynamodb"), boto3.client("s3"), []
    for key in resources.tables():
        try:
            ddb.describe_table(TableName=resource_name(key))
            found.append(resource_name(key))
        except ClientError:
            pass
    for key in resources.declaration()["buckets"]:
        try:
            s3.head_bucket(Bucket=resource_name(key))
            found.append(resource_name(key))
        except ClientError:
            pass
    return found


def apply_stack(name: str, template: dict[str, Any]) -> str:
    """Create the stack, or update it; an update with nothing to change is not an error."""
    import boto3
    from botocore.exceptions import ClientError

    cfn = boto3.client("cloudformation")
    body = json.dumps(template)
    tags = [{"Key": "project", "Value": "fila"}, {"Key": "stage", "Value": os.environ["FILA_STAGE"]}]
    status = _stack_status(cfn, name)
    if status == "ROLLBACK_COMPLETE":  # a first create that failed can only be deleted
        cfn.delete_stack(StackName=name)
        cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 2})
        status = None
    if status is None:
        cfn.create_stack(StackName=name, TemplateBody=body, Tags=tags, OnFailure="ROLLBACK")
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 2})
        return "created"
    try:
        cfn.update_stack(StackName=name, TemplateBody=body, Tags=tags)
    except ClientError as err:
        if "No updates are to be performed" in str(err):
            return "unchanged"
        raise
    cfn.get_waiter("stack_update_complete").wait(StackName=name, WaiterConfig={"Delay": 2})
    return "updated"


def _stack_status(cfn: Any, name: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        status: str = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError as err:
        if "does not exist" in str(err):
            return None
        raise
    return None if status == "DELETE_COMPLETE" else status


def configure_mappings() -> dict[str, dict[str, Any]]:
    """ReportBatchItemFailures and the lane's concurrency on every consumer's mapping, read back."""
    import boto3

    client = boto3.client("lambda")
    everything = [m for page in client.get_paginator("list_event_source_mappings").paginate()
                  for m in page["EventSourceMappings"]]
    out: dict[str, dict[str, Any]] = {}
    for lane in resources.lanes().values():
        function = function_name(lane.function)
        queue = [m for m in everything if m["FunctionArn"].split(":function:")[-1].split(":")[0] == function
                 and m["EventSourceArn"].endswith(f":{resource_name(lane.name)}")]
        if len(queue) != 1:
            raise DeployError(f"{function}: {len(queue)} mappings from its queue, expected 1")
        settings: dict[str, Any] = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
        if lane.concurrency >= 2:  # the smallest maximum concurrency SQS mappings take
            settings["ScalingConfig"] = {"MaximumConcurrency": lane.concurrency}
        client.update_event_source_mapping(UUID=queue[0]["UUID"], **settings)
        now = client.get_event_source_mapping(UUID=queue[0]["UUID"])
        wrong = {k: now.get(k) for k, v in settings.items() if now.get(k) != v}
        if now.get("BatchSize") != lane.batch_size:
            wrong["BatchSize"] = now.get("BatchSize")
        if wrong:
            raise DeployError(f"{function}'s mapping did not take {wrong}")
        out[lane.name] = {"uuid": now["UUID"], "batch_size": now["BatchSize"], **settings}
    return out


def chalice(stage: str, *argv: str) -> None:
    """Chalice's CLI in the stage's project folder; against an emulator on this machine, through
    fila.local.chalice_cli (moto's gaps)."""
    project = project_folder(stage)
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    local = urlparse(endpoint).hostname in {"127.0.0.1", "localhost"}
    command = ([sys.executable, "-m", "fila.local.chalice_cli"] if local
               else [str(Path(sys.executable).parent / "chalice")])
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
           "PYTHONPATH": str(ROOT)}
    subprocess.run([*command, "--project-dir", str(project), *argv], check=True, env=env)


def project_folder(stage: str) -> Path:
    """build/deploy/<stage>: the code linked, the config for this stage with a policy file per function."""
    import boto3

    project = ROOT / "build" / "deploy" / stage
    (project / ".chalice" / "policies").mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "chalicelib", "requirements.txt"):
        _link(project / name, ROOT / name)
    for name in CHALICE_STATE:
        (ROOT / ".chalice" / name).mkdir(exist_ok=True)
        _link(project / ".chalice" / name, ROOT / ".chalice" / name)
    session = boto3.session.Session()
    account = boto3.client("sts").get_caller_identity()["Account"]
    config = json.loads(chalice_config.PATH.read_text())  # the committed one, with the operator's edits
    config["stages"] = {stage: config["stages"].get(stage) or chalice_config.stage_config(stage)}
    functions = config["stages"][stage].setdefault("lambda_functions", {})
    for function in POLICIES:
        path = project / ".chalice" / "policies" / f"{function}.json"
        path.write_text(json.dumps(concrete(policy_document(function), session.region_name or "us-east-1",
                                            account), indent=2))
        functions.setdefault(function, {})["iam_policy_file"] = f"policies/{function}.json"
    (project / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    return project


def concrete(document: Any, region: str, account: str, partition: str = "aws") -> Any:
    """A policy with its ``Fn::Sub`` placeholders filled, as a file-based IAM policy must be."""
    if isinstance(document, dict):
        if set(document) == {"Fn::Sub"}:
            return (document["Fn::Sub"].replace("${AWS::Partition}", partition)
                    .replace("${AWS::Region}", region).replace("${AWS::AccountId}", account))
        return {k: concrete(v, region, account, partition) for k, v in document.items()}
    if isinstance(document, list):
        return [concrete(v, region, account, partition) for v in document]
    return document


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.resolve() == target.resolve():
            return
        link.unlink()
    link.symlink_to(target)
