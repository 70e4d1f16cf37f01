"""A translated template (fila.sam) made acceptable to moto's CloudFormation, for tests and trials only."""

from __future__ import annotations

from typing import Any


def for_the_emulator(template: dict[str, Any], name: str) -> dict[str, Any]:
    """moto's CloudFormation needs a REST API's Name and cannot build a deployment from its Body: the
    API's routes are `chalice deploy`'s to check there. It may also create an event source mapping
    before the queue its function depends on (the mapping names the queue by an ARN string, which
    AWS orders through the function): the mapping is given the function's DependsOn. The rest of the
    template is created as is."""
    resources = template["Resources"]
    for logical, resource in list(resources.items()):
        if resource["Type"] in ("AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage"):
            del resources[logical]
        elif resource["Type"] == "AWS::ApiGateway::RestApi":
            resource["Properties"]["Name"] = name
        elif resource["Type"] == "AWS::Lambda::EventSourceMapping":
            function = resource["Properties"]["FunctionName"]["Ref"]
            resource["DependsOn"] = [*resources[function].get("DependsOn", []), function]
    template["Outputs"] = {k: v for k, v in template.get("Outputs", {}).items()
                           if "Deployment" not in str(v) and "Stage" not in str(v)}
    return template
