"""The synthesized stack's template, created on moto: what the local pipeline runs on.

Nothing here is written by hand: buckets, the job table, queues (with their redrive
policies), topics and their subscriptions, the S3 notifications, the SQS event source mappings
(batch sizes), each function's handler, environment and async-retry settings, and the endpoint's
configuration are all read from the template and its intrinsic functions resolved to the
moto resources' names. Deploy-time-only resources (IAM, KMS, alarms, log groups, autoscaling,
CDK's notification custom resource itself) have no local counterpart.

One deliberate difference: queues are created with a visibility timeout of 0. Locally nothing
waits; a message left undeleted (a reported batch failure) is visible again at once, as it is
on AWS once its visibility timeout (6x the consumer's timeout, from the template) has passed.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}
_HASH = re.compile(r"[0-9A-F]{8}$")
LOCAL_QUEUE = {"VisibilityTimeout": "0"}  # see the module docstring


def short_name(logical_id: str) -> str:
    """`PipelineWorkQueueF87FBD97` -> `work`, `PipelineWorkDLQ01F2A79A` -> `work-dlq`,
    `StorageInput124FA7A1` -> `input`, `DatasetQueue5B353EFE` -> `dataset`."""
    base = _HASH.sub("", logical_id)
    for prefix in ("Pipeline", "Storage"):
        base = base.removeprefix(prefix)
    if base.endswith("DLQ"):
        return base[:-3].lower() + "-dlq"
    return base.removesuffix("Queue").lower()


class Resolver:
    """CloudFormation intrinsic functions -> values, given the resources' physical names."""

    def __init__(self) -> None:
        self.physical: dict[str, dict[str, str]] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            return self.physical[logical][attribute]
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self(p)) for p in parts)
        if "Fn::Sub" in value:
            return re.sub(r"\$\{([^}]+)\}", lambda m: self.sub(m.group(1)), value["Fn::Sub"])
        if "Fn::Select" in value:
            index, items = value["Fn::Select"]
            return self(items)[int(index)]
        return {k: self(v) for k, v in value.items()}

    def ref(self, name: str) -> Any:
        return PSEUDO[name] if name in PSEUDO else self.physical[name]["Ref"]

    def sub(self, name: str) -> str:
        logical, _, attribute = name.partition(".")
        return str(self.physical[logical][attribute] if attribute else self.ref(logical))


@dataclass
class Function:
    """One Lambda function as the template defines it."""

    logical_id: str
    command: str  # e.g. "lambdas.split.handler"
    env: dict[str, str]
    retries: int = 2  # async invocations (S3, EventBridge): Lambda's default
    dead_letter_url: str | None = None

    @property
    def name(self) -> str:
        return self.command.split(".")[1]

    def handler(self) -> Callable[[dict[str, Any], Any], Any]:
        module, _, attribute = self.command.rpartition(".")
        return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class EventSource:
    """An SQS event source mapping: which queue feeds which function, how many at once."""

    queue: str
    function: str
    batch_size: int


@dataclass
class EndpointConfig:
    """The SageMaker model and async config: artifact, container environment, S3 paths, topics."""

    name: str
    model_data_url: str
    env: dict[str, str]
    output_path: str
    failure_path: str
    success_topic: str
    error_topic: str


@dataclass
class LocalStack:
    """Create the template's pipeline resources in the current moto account."""

    template: dict[str, Any]
    prefix: str = "upscaler"
    resolve: Resolver = field(default_factory=Resolver)
    buckets: dict[str, str] = field(default_factory=dict)  # short name -> bucket
    queues: dict[str, str] = field(default_factory=dict)  # short name -> URL
    functions: dict[str, Function] = field(default_factory=dict)  # handler name -> function
    sources: list[EventSource] = field(default_factory=list)
    taps: dict[str, str] = field(default_factory=dict)  # function -> queue of its S3 events
    endpoint: EndpointConfig | None = None

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            k: r.get("Properties", {})
            for k, r in self.template["Resources"].items()
            if r["Type"] == kind
        }

    def create(self) -> LocalStack:
        s3, sqs, sns = (boto3.client(n, region_name=REGION) for n in ("s3", "sqs", "sns"))
        for logical, props in self.of_type("AWS::S3::Bucket").items():
            name = f"{self.prefix}-{short_name(logical)}"
            s3.create_bucket(Bucket=name)
            if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            self.buckets[short_name(logical)] = name
            arn = f"arn:aws:s3:::{name}"
            self.resolve.physical[logical] = {"Ref": name, "Arn": arn}
        self._tables()
        queues = self.of_type("AWS::SQS::Queue")
        for logical in sorted(queues, key=lambda k: "RedrivePolicy" in queues[k]):
            self._queue(sqs, logical, queues[logical])
        for logical in self.of_type("AWS::SNS::Topic"):
            arn = sns.create_topic(Name=f"{self.prefix}-{logical}")["TopicArn"]
            self.resolve.physical[logical] = {"Ref": arn, "TopicName": arn.rsplit(":", 1)[1]}
        for props in self.of_type("AWS::SNS::Subscription").values():
            raw = "true" if props.get("RawMessageDelivery") else "false"
            sns.subscribe(
                TopicArn=self.resolve(props["TopicArn"]),
                Protocol=props["Protocol"],
                Endpoint=self.resolve(props["Endpoint"]),
                Attributes={"RawMessageDelivery": raw},
            )
        self._functions()
        self._notifications(s3, sqs)
        self._endpoint()
        return self

    def _tables(self) -> None:
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for logical, props in self.of_type("AWS::DynamoDB::Table").items():
            name = f"{self.prefix}-{short_name(logical)}"
            dynamodb.create_table(
                TableName=name,
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            )
            self.resolve.physical[logical] = {
                "Ref": name,
                "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            }

    def _queue(self, sqs: Any, logical: str, props: dict[str, Any]) -> None:
        attributes = dict(LOCAL_QUEUE)
        if "MessageRetentionPeriod" in props:
            attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(self.resolve(props["RedrivePolicy"]))
        name = f"{self.prefix}-{short_name(logical)}"
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.queues[short_name(logical)] = url
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        self.resolve.physical[logical] = {"Ref": url, "Arn": arn, "QueueName": name}

    def _functions(self) -> None:
        functions = self.of_type("AWS::Lambda::Function")
        for logical in functions:
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}"
            self.resolve.physical[logical] = {"Ref": logical, "Arn": arn}
        by_id = {}
        for logical, props in functions.items():
            command = props.get("ImageConfig", {}).get("Command")
            if not command:  # CDK's own deploy-time handlers: their effect is created here
                continue
            env = self.resolve(props.get("Environment", {}).get("Variables", {}))
            target = props.get("DeadLetterConfig", {}).get("TargetArn")
            dead_letter = self._queue_url(self.resolve(target)) if target else None
            by_id[logical] = Function(logical, command[0], env, dead_letter_url=dead_letter)
        for props in self.of_type("AWS::Lambda::EventInvokeConfig").values():
            function = by_id.get(self.resolve(props["FunctionName"]))
            if function is not None:
                function.retries = int(props.get("MaximumRetryAttempts", 2))
        self.functions = {f.name: f for f in by_id.values()}
        for props in self.of_type("AWS::Lambda::EventSourceMapping").values():
            queue = self._queue_key(self.resolve(props["EventSourceArn"]))
            function = by_id[self.resolve(props["FunctionName"])].name
            self.sources.append(EventSource(queue, function, int(props.get("BatchSize", 10))))

    def _queue_url(self, arn: str) -> str:
        return self.queues[self._queue_key(arn)]

    def _queue_key(self, arn: str) -> str:
        name = arn.rsplit(":", 1)[1]
        return next(k for k, url in self.queues.items() if url.endswith(f"/{name}"))

    def _notifications(self, s3: Any, sqs: Any) -> None:
        """S3 -> queue as configured; S3 -> Lambda through a queue of its own ("tap"), from
        which the driver invokes the function with the event S3 wrote, as Lambda would."""
        functions = {f.logical_id: f for f in self.functions.values()}
        for props in self.of_type("Custom::S3BucketNotifications").values():
            config = self.resolve(props["NotificationConfiguration"])
            queues = list(config.get("QueueConfigurations", []))
            for target in config.get("LambdaFunctionConfigurations", []):
                function = functions[target["LambdaFunctionArn"].rsplit(":", 1)[1]]
                name = f"{self.prefix}-s3-to-{function.name}"
                url = sqs.create_queue(QueueName=name, Attributes=LOCAL_QUEUE)["QueueUrl"]
                self.taps[function.name] = url
                arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
                queues.append({"QueueArn": arn, **{k: target[k] for k in ("Events", "Filter")}})
            s3.put_bucket_notification_configuration(
                Bucket=self.resolve(props["BucketName"]),
                NotificationConfiguration={"QueueConfigurations": queues},
            )

    def _endpoint(self) -> None:
        (model,) = self.of_type("AWS::SageMaker::Model").values()
        (config,) = self.of_type("AWS::SageMaker::EndpointConfig").values()
        (endpoint,) = self.of_type("AWS::SageMaker::Endpoint").values()
        container = model["PrimaryContainer"]
        output = config["AsyncInferenceConfig"]["OutputConfig"]
        topics = self.resolve(output["NotificationConfig"])
        self.endpoint = EndpointConfig(
            name=self.resolve(endpoint["EndpointName"]),
            model_data_url=self.resolve(container["ModelDataUrl"]),
            env=self.resolve(container.get("Environment", {})),
            output_path=self.resolve(output["S3OutputPath"]),
            failure_path=self.resolve(output["S3FailurePath"]),
            success_topic=topics["SuccessTopic"],
            error_topic=topics["ErrorTopic"],
        )
