"""`make deploy` and `make destroy` as an operator runs them, against the embedded emulator: the infra
stack, `chalice deploy`, the mapping settings; read back, deployed again, destroyed."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib import resources
from fila.deploy import POLICIES
from fila.local import emulator
from fila.local.cloudformation import for_the_emulator
from fila.local.defaults import SECRETS
from fila.sam import translate
from tests.helpers import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
STAGE = f"e2e-{uuid.uuid4().hex[:8]}"  # Chalice keeps its record per stage in .chalice/deployed/
pytestmark = pytest.mark.xdist_group("deploy")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """An emulator of its own, every service in one process (CloudFormation makes the queues and tables
    Lambda and the checks below read): what is left after a destroy is this test's alone."""
    url = f"http://127.0.0.1:{free_port()}"
    proc = emulator.start_moto(url, role="all")
    assert proc is not None
    yield url
    stop(proc)
    (ROOT / ".chalice" / "deployed" / f"{STAGE}.json").unlink(missing_ok=True)


def fila(endpoint: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(AWS_ENDPOINT_URL=endpoint, FILA_STAGE="")  # only what an operator sets
    return subprocess.run([sys.executable, "-m", "fila.cli", *argv], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint)


def ours(names: list[str], stage: str = STAGE) -> list[str]:
    return sorted(n for n in names if n == f"fila-{stage}" or n.startswith(f"fila-{stage}-"))


def test_local_stages_are_refused(endpoint: str) -> None:
    for stage in ("local", "local-mine"):
        done = fila(endpoint, "deploy", "--stage", stage)
        assert done.returncode == 2 and "public local secrets" in done.stderr


@pytest.mark.timeout(600)  # in a fresh clone the first deploy builds the dependency zip (pip, PyPI): minutes
def test_deploy_redeploy_destroy(endpoint: str) -> None:
    missing = fila(endpoint, "deploy", "--stage", STAGE)
    assert missing.returncode == 2 and f"/fila/{STAGE}/ADMIN_TOKEN" in missing.stderr, missing.stderr
    assert not ours([s["StackName"] for s in client(endpoint, "cloudformation").describe_stacks()["Stacks"]])
    ssm = client(endpoint, "ssm")
    for name in SECRETS:
        ssm.put_parameter(Name=f"/fila/{STAGE}/{name}", Value=f"{name.lower()}-e2e", Type="SecureString")

    first = fila(endpoint, "deploy", "--stage", STAGE)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "point emitters at http" in first.stdout
    deployed = read_back(endpoint)
    pause_and_resume(endpoint)

    again = fila(endpoint, "deploy", "--stage", STAGE)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert read_back(endpoint) == deployed  # nothing duplicated, nothing lost

    gone = fila(endpoint, "destroy", "--stage", STAGE)
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-3000:]
    assert "kept (data)" in gone.stdout
    left = inventory(endpoint)
    assert left == {"functions": [], "mappings": [], "rules": [], "layers": [], "apis": [], "queues": [], "roles": [],
                    "tables": ours([f"fila-{STAGE}-{t}" for t in resources.tables()]),
                    "buckets": [f"fila-{STAGE}-documents"]}, left

    after = fila(endpoint, "deploy", "--stage", STAGE)  # the kept data stops a new stack: said, nothing made
    assert after.returncode == 2 and f"fila-{STAGE}-events" in after.stderr and "import" in after.stderr
    assert inventory(endpoint) == left


def pause_and_resume(endpoint: str, lane: str = "email") -> None:
    """Pausing a lane on AWS disables its consumer's event source mapping (and only that one)."""
    from chalicelib import aws
    from chalicelib.mappings import LambdaMappings
    from fila.local.provision import use_stage

    lam = client(endpoint, "lambda")

    def states() -> dict[str, str]:
        return {m["FunctionArn"].rsplit(":", 1)[-1]: m["State"]
                for m in lam.list_event_source_mappings()["EventSourceMappings"]
                if m["FunctionArn"].rsplit(":", 1)[-1].startswith(f"fila-{STAGE}-")}

    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL") or k == "FILA_STAGE"}
    for key in saved:
        del os.environ[key]
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    use_stage(STAGE)
    try:
        assert LambdaMappings().set_enabled(lane, False) == 1
        assert {f: s for f, s in states().items() if s == "Disabled"} == {f"fila-{STAGE}-consume_{lane}": "Disabled"}
        assert LambdaMappings().set_enabled(lane, True) == 1
        assert set(states().values()) == {"Enabled"}
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        os.environ.update(saved)
        aws.reset()


def read_back(endpoint: str, stage: str = STAGE, stack: str = f"fila-{STAGE}-infra", routes: bool = True,
              layers: bool = True) -> dict[str, Any]:
    """Everything make deploy promises, checked; the inventory, to compare with a second deploy."""
    lam, iam = client(endpoint, "lambda"), client(endpoint, "iam")
    found = inventory(endpoint, stage)
    chalice_name = {f: f"fila-{stage}" if f == "api_handler" else f"fila-{stage}-{f}" for f in POLICIES}
    assert found["functions"] == sorted(chalice_name.values())
    for function, name in chalice_name.items():  # every role's actions are exactly its row of the table
        role = lam.get_function(FunctionName=name)["Configuration"]["Role"].rsplit("/", 1)[-1]
        policies = iam.list_role_policies(RoleName=role)["PolicyNames"]
        documents = [iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"] for p in policies]
        documents = [ast.literal_eval(d) if isinstance(d, str) else d for d in documents]  # moto keeps a
        # stack's inline policy as the repr of the dict it was given
        actions = {a for d in documents for s in d["Statement"] for a in s["Action"]}
        if layers:  # the dependencies, uploaded once for all the functions
            arns = [layer["Arn"] for layer in lam.get_function(FunctionName=name)["Configuration"]["Layers"]]
            assert [arn.split(":")[-2] for arn in arns] == [f"fila-{stage}-managed-layer"], arns
        expected = {a for acts, _ in POLICIES[function] for a in acts}
        assert actions - {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"} == expected, name
    for lane in resources.lanes().values():
        (mapping,) = [m for m in lam.list_event_source_mappings()["EventSourceMappings"]
                      if m["FunctionArn"].endswith(f":function:{chalice_name[lane.function]}")]
        assert mapping["EventSourceArn"].endswith(f":fila-{stage}-{lane.name}")
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["BatchSize"] == lane.batch_size
        assert mapping.get("ScalingConfig", {}).get("MaximumConcurrency") == lane.concurrency
    events = client(endpoint, "events")
    rules = {r["Name"]: r for r in events.list_rules()["Rules"] if r["Name"].startswith(f"fila-{stage}-")}
    expressions = {name: rule["ScheduleExpression"] for name, rule in rules.items()}
    assert sorted(expressions.values()) == ["cron(0 * * * ? *)", "rate(1 minute)"], expressions
    for name in rules:
        (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
        assert target["Arn"].split(":function:")[1] in chalice_name.values()
    if routes:  # Chalice names a stage's API after the app; this emulator holds only ours
        (api,) = found["apis"]
        paths = {r["path"] for r in client(endpoint, "apigateway").get_resources(restApiId=api)["items"]}
        assert {"/webhooks/{source}", "/health", "/admin"} <= paths, paths
    made = client(endpoint, "cloudformation").list_stack_resources(StackName=stack)
    kinds = {r["ResourceType"] for r in made["StackResourceSummaries"]}
    assert {"AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Logs::LogGroup"} <= kinds
    return found


def inventory(endpoint: str, stage: str = STAGE) -> dict[str, list[str]]:
    lam = client(endpoint, "lambda")
    functions = ours([f["FunctionName"] for f in lam.list_functions()["Functions"]], stage)
    return {
        "functions": functions,
        "mappings": sorted(m["UUID"] for m in lam.list_event_source_mappings()["EventSourceMappings"]
                           if m["FunctionArn"].rsplit(":", 1)[-1] in functions
                           or f":fila-{stage}-" in m["EventSourceArn"]),
        "rules": ours([r["Name"] for r in client(endpoint, "events").list_rules()["Rules"]], stage),
        "layers": ours([v["LayerVersionArn"].split(":")[-2] for layer in lam.list_layers()["Layers"]
                        for v in lam.list_layer_versions(LayerName=layer["LayerName"])["LayerVersions"]], stage),
        "apis": sorted(a["id"] for a in client(endpoint, "apigateway").get_rest_apis()["items"] if a["name"] == "fila"),
        "queues": ours([u.rsplit("/", 1)[-1] for u in client(endpoint, "sqs").list_queues().get("QueueUrls", [])], stage),
        "roles": ours([r["RoleName"] for r in client(endpoint, "iam").list_roles()["Roles"]], stage),
        "tables": ours(client(endpoint, "dynamodb").list_tables()["TableNames"], stage),
        "buckets": ours([b["Name"] for b in client(endpoint, "s3").list_buckets()["Buckets"]], stage),
    }


def test_destroying_what_was_never_deployed_removes_nothing_and_says_so(endpoint: str) -> None:
    """What it prints parses: the result as JSON (scripts read it), then one line for people."""
    done = fila(endpoint, "destroy", "--stage", "neverdeployed")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert result["removed"] == [] and "fila-neverdeployed-events" in result["kept"]


def test_the_sam_package_creates_what_make_deploy_checks(endpoint: str, tmp_path: Path) -> None:
    """`make package`'s template, translated offline by aws-sam-translator, created on the emulator: it
    passes the same read-back as `make deploy` (functions, role actions, mappings, rules, infra)."""
    stage = f"{STAGE}-sam"
    env = {**os.environ, "FILA_STAGE": stage}
    subprocess.run([sys.executable, "-m", "fila.cli", "package", "--stage", stage, "--out", str(tmp_path)],
                   check=True, capture_output=True, env=env, cwd=ROOT, timeout=600)
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="artifacts")
    s3.upload_file(str(tmp_path / "package" / "deployment.zip"), "artifacts", "fila.zip")
    s3.upload_file(str(tmp_path / "package" / "layer-deployment.zip"), "artifacts", "fila-layer.zip")
    os.environ["FILA_STAGE"] = stage  # the translated ARNs and names are this stage's
    try:
        sam = json.loads((tmp_path / "package" / "sam.json").read_text())
        code = translate(sam, ("artifacts", "fila.zip"), ("artifacts", "fila-layer.zip"))
        template = for_the_emulator(code, f"fila-{stage}")
    finally:
        os.environ["FILA_STAGE"] = "local"
    assert not any(r["Type"].startswith("AWS::Serverless::") for r in template["Resources"].values())
    (layer,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::LayerVersion"]
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == len(POLICIES) and all(f["Properties"]["Layers"] == [{"Ref": layer}] for f in functions)
    cfn = client(endpoint, "cloudformation")
    cfn.create_stack(StackName=f"fila-{stage}", TemplateBody=json.dumps(template),
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
    cfn.get_waiter("stack_create_complete").wait(StackName=f"fila-{stage}", WaiterConfig={"Delay": 1})
    read_back(endpoint, stage, stack=f"fila-{stage}", routes=False, layers=False)  # moto's CloudFormation
    # drops a function's Layers (checked in the template above)
