"""checkov (a second IaC scanner beside cdk-nag and cfn-lint): the findings this design accepts.

Each one is suppressed in the template itself, on the resource, with its reason
(`Metadata: checkov: skip: [{id, comment}]`), so a reviewer of the template sees why; the
test runs checkov over the synthesized template and fails on any finding not listed here.
Findings that could be fixed were fixed instead (reserved concurrency on every function).
"""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

from stacks.nag import MIN_REASON

#: Checks that every resource of a type fails for the same accepted reason.
BY_TYPE: dict[str, list[tuple[str, str]]] = {
    "AWS::SQS::Queue": [
        (
            "CKV_AWS_27",
            "SSE-SQS (SQS-managed keys) encrypts every message at rest; messages hold S3 keys "
            "and job ids only. A customer-managed key would add a KMS call per message and "
            "S3 event notifications could not deliver to the dataset queue without key grants.",
        )
    ],
    "AWS::Logs::LogGroup": [
        (
            "CKV_AWS_158",
            "The logs hold job ids, S3 keys and timings, never media or credentials; CloudWatch "
            "Logs encrypts them at rest with its own keys.",
        )
    ],
    "AWS::Lambda::Function": [
        (
            "CKV_AWS_117",
            "The functions call only AWS APIs and fetch downloads from the public internet; "
            "they serve nothing on a network. A VPC would need NAT gateways (a standing cost) "
            "and add no isolation.",
        ),
        (
            "CKV_AWS_173",
            "The environment holds resource names and settings, no secrets; Lambda encrypts it "
            "at rest with its service key.",
        ),
    ],
}
#: CKV_AWS_116 (a function dead-letter queue) by how the function is invoked.
DLQ_REASONS = {
    "sqs": "Invoked by an SQS event source mapping: a failing message goes to the source "
    "queue's dead-letter queue (redrive policy, alarmed); a function DLQ only applies to "
    "asynchronous invocations.",
    "async": "Invoked asynchronously by upscaler submit without retries: the handler ends "
    "every failure as a FAILED job row with its reason and the sweeper fails a job left "
    "FETCHING, so a failed event carries nothing a DLQ would add.",
    "schedule": "Invoked every 15 minutes by an EventBridge schedule without retries; the next "
    "run repeats the same scan, so a failed event carries nothing worth keeping.",
}
CDK_HANDLER = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def skip(scope: IConstruct, check: str, reason: str) -> None:
    """Suppress checkov's `check` on the CloudFormation resource of `scope`, with `reason`."""
    if len(reason.strip()) < MIN_REASON:
        raise ValueError(f"suppressing {check} needs a specific reason, not {reason!r}")
    resource = scope if isinstance(scope, cdk.CfnResource) else scope.node.default_child
    assert isinstance(resource, cdk.CfnResource), scope
    entries = (resource.get_metadata("checkov") or {}).get("skip", [])
    if all(entry["id"] != check for entry in entries):
        entries = [*entries, {"id": check, "comment": reason}]
    resource.add_metadata("checkov", {"skip": entries})


@jsii.implements(cdk.IAspect)
class CheckovSkips:
    """Applies `BY_TYPE`, and the reasons for CDK's own deploy-time notification handler."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, cdk.CfnResource):
            return
        for check, reason in BY_TYPE.get(node.cfn_resource_type, ()):
            skip(node, check, reason)
        if isinstance(node, lambda_.CfnFunction) and node.reserved_concurrent_executions is None:
            skip(
                node,
                "CKV_AWS_115",
                "Deployed with -c reserve_concurrency=false (an account whose concurrency quota "
                "cannot spare reservations); SQS consumers stay capped by their mappings.",
            )
        if any(scope.node.id == CDK_HANDLER for scope in node.node.scopes):
            reason = (
                "CDK's built-in handler of the deploy-time custom resource that installs the S3 "
                "notifications: CloudFormation calls it synchronously, only during deployments."
            )
            skip(node, "CKV_AWS_115", reason)
            skip(node, "CKV_AWS_116", reason)
