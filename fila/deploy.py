"""Packaging for AWS: infra/resources.json rendered as CloudFormation and merged into `chalice package`.

The merge adds what Chalice cannot say: ReportBatchItemFailures on every SQS event source (so a
partial batch response is honoured) and a DependsOn on the queue it reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalice.app import Chalice, SQSEventConfig
from chalice.utils import to_cfn_resource_name

from chalicelib import resources
from chalicelib.settings import resource_name, stage
from fila import ROOT
from fila.infra import dlq_attributes, queue_attributes, table_definition


def logical_id(kind: str, key: str) -> str:
    return kind + to_cfn_resource_name(key.replace("-", "_"))


def function_name(function: str) -> str:
    """A Lambda function's name, as ``chalice deploy`` names it (``fila-<stage>`` for the API's), so
    both deploy paths, the log groups and the policies agree."""
    return resource_name("")[:-1] if function == "api_handler" else resource_name(function)


def resource_template(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """CloudFormation resources for every queue (+ DLQ), table and bucket, named for the current stage."""
    spec = spec or resources.declaration()
    out: dict[str, Any] = {}
    for lane in resources.lanes().values():
        dlq = logical_id("Queue", f"{lane.name}-dlq")
        out[dlq] = {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": resource_name(f"{lane.name}-dlq"), **dlq_attributes(lane)}}
        out[logical_id("Queue", lane.name)] = {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": resource_name(lane.name), **queue_attributes(lane, {"Fn::GetAtt": [dlq, "Arn"]})}}
    out.update(alarms(spec))
    for function in POLICIES:
        out[f"{to_cfn_resource_name(function)}Logs"] = {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": f"/aws/lambda/{function_name(function)}",
            "RetentionInDays": LOG_RETENTION_DAYS.get(stage(), 30)}}
    for table in resources.tables().values():
        properties: dict[str, Any] = {
            **table_definition(table, resource_name(table.name)),
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        }
        if table.ttl:
            properties["TimeToLiveSpecification"] = {"AttributeName": table.ttl, "Enabled": True}
        out[logical_id("Table", table.name)] = {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain",
                                                "UpdateReplacePolicy": "Retain", "Properties": properties}
    for key in spec["buckets"]:
        out[logical_id("Bucket", key)] = {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain",
                                          "UpdateReplacePolicy": "Retain", "Properties": {
            "BucketName": resource_name(key),
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "BlockPublicPolicy": True,
                "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        }}
    return out


# Least privilege, per function: the AWS actions each one's code calls, on this stage's resources only.
# tests/integration/test_policies.py fails when a function calls an action missing here.
TABLES = tuple(resources.tables())
CONSUMER_POLICY = [
    (["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
      "dynamodb:Query"], ("table", "events", "jobs", "contacts", "lanes")),
    # the event source mapping's own calls (Receive, Delete, GetQueueAttributes) use the function's role
    (["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
      "sqs:SendMessage", "sqs:GetQueueUrl"], ("queues",)),
    (["s3:PutObject", "s3:GetObject"], ("object", "invoices/*")),
    (["s3:GetObject"], ("object", "payloads/*")),
    (["ses:SendEmail"], ("ses-identity",)),
]
POLICIES: dict[str, list[tuple[list[str], tuple[str, ...]]]] = {
    "api_handler": [
        (["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem",
          "dynamodb:Query", "dynamodb:DescribeTable"], ("table", *TABLES)),
        (["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage",
          "sqs:DeleteMessage"], ("queues",)),
        (["s3:PutObject", "s3:GetObject"], ("object", "payloads/*")),
        (["ssm:GetParameter"], ("parameter",)),
        (["dynamodb:DeleteItem"], ("table", "jobs")),  # clean
        # pause/resume: IAM grants ListEventSourceMappings only on "*" (it has no resource type)
        (["lambda:ListEventSourceMappings"], ("any",)),
        (["lambda:UpdateEventSourceMapping"], ("consumer-mappings",)),
    ],
    **{lane.function: CONSUMER_POLICY for lane in resources.lanes().values()},
    "recovery_sweep": [
        (["dynamodb:Query", "dynamodb:UpdateItem"], ("table", "events")),
        (["dynamodb:UpdateItem"], ("table", "lanes")),  # each lane's depth, for its chart
        (["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"], ("queues",)),
    ],
    "sync_crm": [
        (["dynamodb:Query"], ("table", "contacts")),
        (["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
         ("table", "schedules")),
    ],
}


def _arns(target: tuple[str, ...], spec: dict[str, Any]) -> list[Any]:
    """This stage's ARNs for a policy target (never a bare "*")."""
    kind, *keys = target

    def regional(service: str) -> str:
        return f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:"

    if kind == "table":
        return [{"Fn::Sub": regional("dynamodb") + f"table/{resource_name(k)}{tail}"}
                for k in keys for tail in ("", "/index/*")]
    if kind == "queues":
        return [{"Fn::Sub": regional("sqs") + resource_name(q) + tail}
                for q in spec["queues"] for tail in ("", "-dlq")]
    if kind == "object":
        return [{"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{resource_name('documents')}/{keys[0]}"}]
    if kind == "parameter":
        return [{"Fn::Sub": regional("ssm") + f"parameter/fila/{stage()}/*"}]
    if kind == "any":
        return ["*"]
    if kind == "consumer-mappings":  # their UUIDs are Lambda's; the condition names whose they are
        return [{"Fn::Sub": regional("lambda") + "event-source-mapping:*"}]
    if kind == "ses-identity":  # the sender's identity is configuration (EMAIL_FROM), not a resource here
        return [{"Fn::Sub": regional("ses") + "identity/*"}]
    raise ValueError(f"unknown policy target {target}")


def _condition(target: tuple[str, ...]) -> dict[str, Any]:
    if target[0] != "consumer-mappings":
        return {}
    consumers = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:" + \
        resource_name("consume_") + "*"
    return {"Condition": {"ArnLike": {"lambda:FunctionArn": {"Fn::Sub": consumers}}}}


def policy_document(function: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = spec or resources.declaration()
    group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/"
    logs = [{"Fn::Sub": group + function_name(function) + tail} for tail in ("", ":*")]  # its own group only
    statements = [{"Sid": "Logs", "Effect": "Allow", "Resource": logs,
                   "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]}]
    statements += [{"Sid": f"S{i}", "Effect": "Allow", "Action": actions, "Resource": _arns(target, spec),
                    **_condition(target)}
                   for i, (actions, target) in enumerate(POLICIES[function])]
    return {"Version": "2012-10-17", "Statement": statements}


OLDEST_MESSAGE_ALARM_SECONDS = 600
LOG_RETENTION_DAYS = {"dev": 14, "prod": 90}


def alarms(spec: dict[str, Any]) -> dict[str, Any]:
    """What an on-call engineer wants paged on: anything in a DLQ, and a lane that stopped draining."""
    out: dict[str, Any] = {}
    for key in spec["queues"]:
        for suffix, metric, threshold, text in (
                ("-dlq", "ApproximateNumberOfMessagesVisible", 0, "has messages: jobs failed for good"),
                ("", "ApproximateAgeOfOldestMessage", OLDEST_MESSAGE_ALARM_SECONDS,
                 f"oldest message over {OLDEST_MESSAGE_ALARM_SECONDS} s: consumers are not keeping up")):
            name = resource_name(key + suffix)
            out[logical_id("Alarm", f"{key}{suffix}-{'depth' if suffix else 'age'}")] = {
                "Type": "AWS::CloudWatch::Alarm", "Properties": {
                    "AlarmName": f"{name}-{'depth' if suffix else 'oldest-age'}",
                    "AlarmDescription": f"{name} {text}",
                    "Namespace": "AWS/SQS", "MetricName": metric,
                    "Dimensions": [{"Name": "QueueName", "Value": name}],
                    "Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 1,
                    "Threshold": threshold, "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching"}}
    return out


def merge_template(app: Chalice, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template given to ``chalice package --merge-template``."""
    spec = spec or resources.declaration()
    template: dict[str, Any] = {"Resources": resource_template(spec)}
    queue_keys = {resource_name(key): key for key in spec["queues"]}
    functions = ["api_handler", *(source.name for source in app.event_sources)]
    for function in functions:
        logical = "APIHandler" if function == "api_handler" else to_cfn_resource_name(function)
        role = "ApiHandlerRole" if function == "api_handler" else f"{logical}Role"
        template["Resources"][role] = {"Properties": {"Policies": [
            {"PolicyName": f"{role}Policy", "PolicyDocument": policy_document(function, spec)}]}}
        # Named as chalice deploy names them, so their log groups (resource_template) are theirs.
        template["Resources"].setdefault(logical, {}).setdefault("Properties", {})["FunctionName"] = \
            function_name(function)
    for source in app.event_sources:
        if not isinstance(source, SQSEventConfig) or source.queue not in queue_keys:
            continue
        function = to_cfn_resource_name(source.name)
        merged = template["Resources"].setdefault(function, {})
        merged["DependsOn"] = [logical_id("Queue", queue_keys[source.queue])]
        merged.setdefault("Properties", {})["Events"] = {f"{function}SqsEventSource": {"Properties": {
            "FunctionResponseTypes": ["ReportBatchItemFailures"]}}}
    return template


def package(stage: str, out: Path) -> Path:
    """``chalice package`` for ``stage`` merged with infra/; the SAM template's path."""
    from fila.local.chalice_app import load

    os.environ["FILA_STAGE"] = stage
    loaded = load(stage)
    out.mkdir(parents=True, exist_ok=True)
    merge = out / "infra.json"
    merge.write_text(json.dumps(merge_template(loaded.app), indent=2))
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "--project-dir", str(ROOT), "package",
         "--stage", stage, "--merge-template", str(merge), str(out / "package")],
        check=True, env=env,
    )
    return out / "package" / "sam.json"
