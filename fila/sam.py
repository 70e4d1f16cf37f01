"""`make package`'s SAM template as plain CloudFormation, translated offline by AWS's own SAM translator
(aws-sam-translator, what CloudFormation's ``AWS::Serverless`` transform runs), so a pipeline that
cannot use the transform, and the emulator (which skips it), can create the stack.
"""

from __future__ import annotations

import os
from typing import Any


class NoManagedPolicies:
    """fila's functions carry their own roles (fila.deploy.POLICIES): no managed policy is looked up."""

    def load(self) -> dict[str, str]:
        return {}


def translate(sam: dict[str, Any], code: tuple[str, str], layer: tuple[str, str]) -> dict[str, Any]:
    """Plain CloudFormation for ``sam``: its functions' code at ``code`` and the layer of their
    dependencies at ``layer`` (bucket, key: where deployment.zip and layer-deployment.zip were put)."""
    from samtranslator.translator.transform import transform

    where = {"AWS::Serverless::Function": ("CodeUri", code),
             "AWS::Serverless::LayerVersion": ("ContentUri", layer)}
    for resource in sam["Resources"].values():
        if resource["Type"] in where:
            prop, (bucket, key) = where[resource["Type"]]
            resource["Properties"][prop] = f"s3://{bucket}/{key}"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator's ARNs need a region
    template: dict[str, Any] = transform(sam, {}, NoManagedPolicies())
    return template
