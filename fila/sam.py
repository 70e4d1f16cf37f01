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


def translate(sam: dict[str, Any], code: tuple[str, str]) -> dict[str, Any]:
    """Plain CloudFormation for ``sam``, its functions' code at ``code`` (bucket, key)."""
    from samtranslator.translator.transform import transform

    bucket, key = code
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{bucket}/{key}"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator's ARNs need a region
    template: dict[str, Any] = transform(sam, {}, NoManagedPolicies())
    return template
