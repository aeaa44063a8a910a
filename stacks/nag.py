"""cdk-nag (v3) acknowledgments: one helper so every acknowledgment carries a real reason."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

MIN_REASON = 40


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (e.g. `AwsSolutions-IAM5[Resource::...]`) on `scope`.

    cdk-nag v3 uses CDK's native `Validations.of(...).acknowledge`; each finding of a rule that
    reports several (IAM5) is acknowledged individually, so nothing unreviewed slips through.
    """
    if len(reason.strip()) < MIN_REASON:
        raise ValueError(f"acknowledgment of {rule} needs a specific reason, not {reason!r}")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def rendered(scope: IConstruct, value: str) -> str:
    """`value` (which may hold tokens) as cdk-nag prints it in finding IDs.

    `{"Ref": "X"}` becomes `<X>`, `{"Fn::GetAtt": ["Y", "Arn"]}` becomes `<Y.Arn>`, and
    `Fn::Join` pieces are concatenated, e.g. `<StorageWork1234.Arn>/jobs/*`.
    """

    def render(node: object) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and "Ref" in node:
            return f"<{node['Ref']}>"
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            return f"<{'.'.join(node['Fn::GetAtt'])}>"
        if isinstance(node, dict) and "Fn::Join" in node:
            separator, parts = node["Fn::Join"]
            return separator.join(render(part) for part in parts)
        raise ValueError(f"cannot render {node!r} for a cdk-nag finding ID")

    return render(cdk.Stack.of(scope).resolve(value))


def acknowledge_resources(scope: IConstruct, resources: list[str], reason: str) -> None:
    """Acknowledge the IAM5 wildcard finding of each resource ARN (tokens allowed)."""
    for resource in resources:
        acknowledge(scope, f"AwsSolutions-IAM5[Resource::{rendered(scope, resource)}]", reason)
