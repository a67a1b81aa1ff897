"""Create the mail table, bucket, handoff queue and SES queue, idempotently, wherever boto3 points.

The schema is read from ``infra/resources.json``, the same CloudFormation
resources that ``scripts/package.py`` merges into Chalice's template, so the
local and the deployed schema cannot drift: a property this script does not
know how to apply is an error here rather than a silent difference, and so is
a resource that it neither makes nor knowingly skips (``DEPLOY_ONLY``). An
emulator is reached through boto3's own ``AWS_ENDPOINT_URL``.

Each queue (``--queue NAME``, the handoff queue MAILS_QUEUE; ``--ses-queue
NAME``, the SES notifications' SES_QUEUE) comes with its dead-letter queue
``NAME-dead-letter``; an existing pair is brought up to date (attributes,
redrive) rather than left as it is.

The Amazon SES ingress itself (SNS topic, its subscription, the queue and
bucket policies, the receipt rule) exists only in a CloudFormation deployment
with ``EnableSes=true``: an emulator cannot receive mail over SMTP, and a
bucket policy for a service principal means nothing to it. Those resources are
listed in ``DEPLOY_ONLY``, must be conditional, and must be off for the
parameters this script is given; so what it makes is exactly what a
SendGrid-only stack (``EnableSes=false``, the default) has.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "resources.json"

# Every property of the two resources that this script applies. One added to
# infra/resources.json and not here makes create_resources fail, so the
# deployed schema cannot grow a feature that the local one silently lacks.
TABLE_PROPERTIES = frozenset(
    {
        "BillingMode",
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "PointInTimeRecoverySpecification",
        "SSESpecification",
        "TimeToLiveSpecification",
    }
)
BUCKET_PROPERTIES = frozenset(
    {"BucketEncryption", "PublicAccessBlockConfiguration", "OwnershipControls", "LifecycleConfiguration"}
)
# CloudFormation's AWS::SQS::Queue properties that are SQS attributes of the
# same name; RedrivePolicy is one too, once its target ARN is known.
QUEUE_ATTRIBUTES = frozenset(
    {
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "SqsManagedSseEnabled",
        "VisibilityTimeout",
    }
)
QUEUE_PROPERTIES = QUEUE_ATTRIBUTES | {"RedrivePolicy"}
DEAD_LETTER_SUFFIX = "-dead-letter"
# SQS: up to 80 letters, digits, hyphens and underscores (a standard queue).
MAX_QUEUE_NAME = 80 - len(DEAD_LETTER_SUFFIX)
_QUEUE_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_QUEUE_NAME}}}")

# The resources this script makes, by their name in infra/resources.json, with their type.
APPLIED = {
    "MailsTable": "AWS::DynamoDB::Table",
    "MailsBucket": "AWS::S3::Bucket",
    "MailsQueue": "AWS::SQS::Queue",
    "MailsDeadLetterQueue": "AWS::SQS::Queue",
    "SesQueue": "AWS::SQS::Queue",
    "SesDeadLetterQueue": "AWS::SQS::Queue",
}
# Each queue that has a dead-letter queue, and that dead-letter queue.
DEAD_LETTER_QUEUES = {"MailsQueue": "MailsDeadLetterQueue", "SesQueue": "SesDeadLetterQueue"}
# The resources this script knowingly does not make: the SES ingress, which
# only a deployment can have (see the module's docstring). Each must carry a
# Condition that is false for the parameters given here. One added to
# infra/resources.json and to neither list is an error, and so is an entry
# here that the template no longer has.
DEPLOY_ONLY = {
    "SesTopic": "AWS::SNS::Topic",
    "SesSubscription": "AWS::SNS::Subscription",
    "SesQueuePolicy": "AWS::SQS::QueuePolicy",
    "SesBucketPolicy": "AWS::S3::BucketPolicy",
    "SesReceiptRuleSet": "AWS::SES::ReceiptRuleSet",
    "SesReceiptRule": "AWS::SES::ReceiptRule",
}


class SchemaError(RuntimeError):
    """infra/resources.json holds what this script cannot apply, or an existing table differs from it."""


@dataclass(frozen=True)
class Schema:
    """The Properties of the resources this script makes, with the template's parameters and conditions resolved."""

    table: dict[str, Any]
    bucket: dict[str, Any]
    queue: dict[str, Any]
    dead_letter_queue: dict[str, Any]
    ses_queue: dict[str, Any]
    ses_dead_letter_queue: dict[str, Any]


@dataclass(frozen=True)
class GetAtt:
    """An ``Fn::GetAtt`` left for the caller: its value exists only once that resource does."""

    resource: str
    attribute: str


_NO_VALUE = object()


def _resolve(value: Any, parameters: Mapping[str, str], conditions: Mapping[str, bool]) -> Any:
    """The few intrinsic functions infra/resources.json uses: Ref (to a parameter or AWS::NoValue) and Fn::If."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                if argument == "AWS::NoValue":
                    return _NO_VALUE
                if argument not in parameters:
                    raise SchemaError(f"Ref to {argument!r}, which is no parameter of the template")
                return parameters[argument]
            if function == "Fn::If":
                name, when_true, when_false = argument
                return _resolve(when_true if conditions[name] else when_false, parameters, conditions)
            if function == "Fn::GetAtt":
                resource, attribute = argument
                return GetAtt(resource, attribute)
            if function.startswith("Fn::"):
                raise SchemaError(f"{function} is not understood by scripts/create_resources.py")
        resolved = {key: _resolve(item, parameters, conditions) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}
    if isinstance(value, list):
        items = [_resolve(item, parameters, conditions) for item in value]
        return [item for item in items if item is not _NO_VALUE]
    return value


def _condition(expression: Any, parameters: Mapping[str, str], conditions: Mapping[str, bool]) -> bool:
    ((function, argument),) = expression.items()
    if function == "Fn::Equals":
        left, right = (str(_resolve(side, parameters, conditions)) for side in argument)
        return left == right
    if function == "Fn::Not":
        return not _condition(argument[0], parameters, conditions)
    if function == "Fn::And":
        return all(_condition(item, parameters, conditions) for item in argument)
    if function == "Fn::Or":
        return any(_condition(item, parameters, conditions) for item in argument)
    if function == "Condition":
        return conditions[argument]
    raise SchemaError(f"condition function {function} is not understood by scripts/create_resources.py")


def load_schema(parameters: Mapping[str, object] | None = None, template: Path = TEMPLATE) -> Schema:
    """Resolve the template as CloudFormation would, given values for its parameters (else their defaults)."""
    document = json.loads(template.read_text())
    declared: dict[str, Any] = document.get("Parameters", {})
    given = dict(parameters or {})
    unknown = set(given) - set(declared)
    if unknown:
        raise SchemaError(f"the template has no parameter {', '.join(sorted(unknown))}")
    # CloudFormation hands every parameter to Ref as a string, Number ones included.
    values = {name: str(given.get(name, spec.get("Default", ""))) for name, spec in declared.items()}
    conditions: dict[str, bool] = {}
    for name, expression in document.get("Conditions", {}).items():
        conditions[name] = _condition(expression, values, conditions)
    resources: dict[str, Any] = document["Resources"]
    _check_resources(resources, conditions)
    properties = {
        name: _resolve(resources[name].get("Properties", {}), values, conditions) for name in APPLIED
    }
    schema = Schema(
        table=properties["MailsTable"],
        bucket=properties["MailsBucket"],
        queue=properties["MailsQueue"],
        dead_letter_queue=properties["MailsDeadLetterQueue"],
        ses_queue=properties["SesQueue"],
        ses_dead_letter_queue=properties["SesDeadLetterQueue"],
    )
    known = {
        "MailsTable": TABLE_PROPERTIES,
        "MailsBucket": BUCKET_PROPERTIES,
        **dict.fromkeys(DEAD_LETTER_QUEUES, QUEUE_PROPERTIES),
        **dict.fromkeys(DEAD_LETTER_QUEUES.values(), QUEUE_ATTRIBUTES),
    }
    for kind in APPLIED:
        extra = set(properties[kind]) - known[kind]
        if extra:
            raise SchemaError(f"{kind} has {', '.join(sorted(extra))}, which create_resources does not apply")
    for queue, dead_letter in DEAD_LETTER_QUEUES.items():
        redrive = properties[queue].get("RedrivePolicy")
        if redrive is not None and redrive.get("deadLetterTargetArn") != GetAtt(dead_letter, "Arn"):
            raise SchemaError(f"{queue}'s RedrivePolicy must target {dead_letter}'s Arn")
    return schema


def _check_resources(resources: Mapping[str, Any], conditions: Mapping[str, bool]) -> None:
    """Every resource of the template is one this script makes, or one it knowingly skips that is off here."""
    for name, resource in resources.items():
        kind = resource.get("Type")
        expected = APPLIED.get(name) or DEPLOY_ONLY.get(name)
        if expected is None:
            raise SchemaError(
                f"infra/resources.json has {name} ({kind}), which create_resources neither makes nor knowingly "
                f"skips: make it here, or add it to DEPLOY_ONLY if only a deployment can have it"
            )
        if kind != expected:
            raise SchemaError(f"{name} is a {kind}; create_resources expects a {expected}")
        if name in APPLIED and "Condition" in resource:
            raise SchemaError(f"{name} has a Condition, which create_resources does not apply")
        if name in DEPLOY_ONLY:
            condition = resource.get("Condition")
            if condition is None:
                raise SchemaError(
                    f"{name} is deploy-only but has no Condition: every stack would have it, and no local stage"
                )
            if conditions.get(condition, True):
                raise SchemaError(
                    f"{name} is on for these parameters ({condition}), and create_resources cannot make it: "
                    f"it exists only in a CloudFormation deployment"
                )
    missing = sorted(set(APPLIED) - set(resources))
    stale = sorted(set(DEPLOY_ONLY) - set(resources))
    if missing or stale:
        raise SchemaError(f"infra/resources.json has no {', '.join(missing + stale)}")


def table_request(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The CreateTable request that matches the CloudFormation table's properties."""
    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": properties["BillingMode"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
    }
    if "GlobalSecondaryIndexes" in properties:
        request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if properties.get("SSESpecification", {}).get("SSEEnabled"):
        # CloudFormation's SSEEnabled and the API's Enabled both mean the
        # AWS managed KMS key (aws/dynamodb), not the default AWS owned key.
        request["SSESpecification"] = {"Enabled": True}
    return request


def _check_existing(dynamodb: Any, name: str, description: dict[str, Any], properties: dict[str, Any]) -> None:
    """An existing table must have the keys and indexes store.py relies on.

    An index it lacks is added (a table made before the index was, such as a
    kept ``make dev`` state); an index of the same name with other keys cannot
    be changed in place and is an error.
    """
    if description["KeySchema"] != properties["KeySchema"]:
        raise SchemaError(f"table {name} exists with another key schema: {description['KeySchema']}")
    have = {
        index["IndexName"]: index["KeySchema"] for index in description.get("GlobalSecondaryIndexes", [])
    }
    for index in properties.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] not in have:
            _add_index(dynamodb, name, properties, index)
        elif have[index["IndexName"]] != index["KeySchema"]:
            raise SchemaError(
                f"table {name} exists without the index {index['IndexName']} as infra/resources.json defines it"
            )


def _add_index(dynamodb: Any, name: str, properties: dict[str, Any], index: dict[str, Any]) -> None:
    keys = {key["AttributeName"] for key in index["KeySchema"]}
    dynamodb.update_table(
        TableName=name,
        AttributeDefinitions=[d for d in properties["AttributeDefinitions"] if d["AttributeName"] in keys],
        GlobalSecondaryIndexUpdates=[{"Create": index}],
    )
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})


def create_table(dynamodb: Any, name: str, properties: dict[str, Any]) -> bool:
    try:
        dynamodb.create_table(**table_request(name, properties))
        created = True
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        created = False
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    if not created:
        _check_existing(dynamodb, name, dynamodb.describe_table(TableName=name)["Table"], properties)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    if properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return created


def lifecycle_rules(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """S3 API lifecycle rules for CloudFormation's ``LifecycleConfiguration``."""
    rules = []
    for rule in properties.get("LifecycleConfiguration", {}).get("Rules", []):
        api_rule: dict[str, Any] = {
            "ID": rule["Id"],
            "Status": rule["Status"],
            "Filter": {"Prefix": rule.get("Prefix", "")},
        }
        if "ExpirationInDays" in rule:
            # A resolved parameter arrives as a string, as CloudFormation's Ref gives it.
            api_rule["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            api_rule["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            }
        rules.append(api_rule)
    return rules


def encryption_rules(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """S3 API encryption rules for CloudFormation's ``BucketEncryption``: the same fields under other names."""
    rules = []
    for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
        api_rule: dict[str, Any] = {
            "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]
        }
        if "BucketKeyEnabled" in rule:
            api_rule["BucketKeyEnabled"] = rule["BucketKeyEnabled"]
        rules.append(api_rule)
    return rules


def _bucket_exists(s3: Any, name: str) -> bool:
    """Whether we own the bucket; a bucket of another account answers 403, raised as ClientError."""
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def create_bucket(s3: Any, name: str, properties: dict[str, Any]) -> bool:
    region = s3.meta.region_name
    kwargs: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    # Asked first because CreateBucket in us-east-1 answers 200 for a bucket
    # the caller already owns, which would read as "created".
    created = not _bucket_exists(s3, name)
    if created:
        try:
            s3.create_bucket(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
            created = False
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"],
        )
    if "OwnershipControls" in properties:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=properties["OwnershipControls"])
    if "BucketEncryption" in properties:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={"Rules": encryption_rules(properties)},
        )
    rules = lifecycle_rules(properties)
    if rules:
        # A PUT replaces the whole configuration, so a retention that was
        # switched off also disappears from an existing bucket.
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": rules}
        )
    return created


def queue_attributes(properties: dict[str, Any], dead_letter_arn: str | None = None) -> dict[str, str]:
    """SQS API attributes (all strings) for CloudFormation's ``AWS::SQS::Queue`` properties."""
    attributes: dict[str, str] = {}
    for name, value in properties.items():
        if name in QUEUE_ATTRIBUTES:
            attributes[name] = json.dumps(value) if isinstance(value, bool) else str(value)
    redrive = properties.get("RedrivePolicy")
    if redrive is not None:
        if dead_letter_arn is None:
            raise SchemaError("a RedrivePolicy needs the dead-letter queue's ARN")
        # The API takes the policy as JSON text, maxReceiveCount included as a number.
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": int(redrive["maxReceiveCount"])}
        )
    return attributes


def _queue_url(sqs: Any, name: str) -> str | None:
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        return None
    return url


def create_queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[bool, str]:
    """Make the queue with these attributes, or set them on an existing one; (created now, its ARN)."""
    url = _queue_url(sqs, name)
    created = url is None
    if url is None:
        try:
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        except ClientError as exc:
            # Made in the meantime, or there with other attributes: set ours below.
            if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            created = False
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    if not created:
        # SetQueueAttributes is idempotent and changes an existing queue in place,
        # so a timeout or redrive changed in infra/resources.json reaches it too.
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return created, arn


def check_queue_name(name: str) -> None:
    if not _QUEUE_NAME.fullmatch(name):
        raise SchemaError(
            f"queue name {name!r}: up to {MAX_QUEUE_NAME} letters, digits, hyphens "
            f"and underscores (its dead-letter queue adds {DEAD_LETTER_SUFFIX!r})"
        )


def create_queues(
    sqs: Any, name: str, queue: dict[str, Any], dead_letter_queue: dict[str, Any]
) -> bool:
    """The queue NAME and its dead-letter queue NAME-dead-letter, of these properties.

    Says whether NAME was created now.
    """
    check_queue_name(name)
    _, dead_letter_arn = create_queue(sqs, name + DEAD_LETTER_SUFFIX, queue_attributes(dead_letter_queue))
    created, _ = create_queue(sqs, name, queue_attributes(queue, dead_letter_arn))
    return created


def create_resources(
    table: str,
    bucket: str,
    session: Any = None,
    *,
    queue: str | None = None,
    ses_queue: str | None = None,
    mail_retention_days: int = 0,
) -> dict[str, bool]:
    """Make (or bring up to date) the table, bucket and each named queue; says which were created now.

    ``queue`` is the handoff queue (infra's MailsQueue), ``ses_queue`` the
    queue of SES's notifications (SesQueue); the answer has "queue" and
    "ses_queue" only for those named.
    """
    named = [name for name in (queue, ses_queue) if name is not None]
    for name in named:
        check_queue_name(name)  # before anything is made
    if queue is not None and queue == ses_queue:
        raise SchemaError(f"queue name {queue!r}: the handoff queue and the SES queue must be two queues")
    session = session or boto3.session.Session()
    schema = load_schema({"MailRetentionDays": mail_retention_days})
    created = {
        "table": create_table(session.client("dynamodb"), table, schema.table),
        "bucket": create_bucket(session.client("s3"), bucket, schema.bucket),
    }
    if queue is not None:
        created["queue"] = create_queues(session.client("sqs"), queue, schema.queue, schema.dead_letter_queue)
    if ses_queue is not None:
        created["ses_queue"] = create_queues(
            session.client("sqs"), ses_queue, schema.ses_queue, schema.ses_dead_letter_queue
        )
    return created


# How main() and scripts/deploy.py name each kind of create_resources' answer.
LABELS = {"table": "table", "bucket": "bucket", "queue": "queue", "ses_queue": "SES queue"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="DynamoDB table name")
    parser.add_argument("--bucket", required=True, help="S3 bucket name")
    parser.add_argument(
        "--queue", metavar="NAME",
        help=f"SQS queue for the handoff (MAILS_QUEUE), with its dead-letter queue NAME{DEAD_LETTER_SUFFIX}",
    )
    parser.add_argument(
        "--ses-queue", metavar="NAME",
        help=f"SQS queue of the SES notifications (SES_QUEUE), with its dead-letter queue NAME{DEAD_LETTER_SUFFIX}",
    )
    parser.add_argument(
        "--mail-retention-days", type=int, default=0, metavar="N",
        help="expire stored mail's S3 objects after N days (default 0: keep)",
    )
    args = parser.parse_args(argv)
    if args.mail_retention_days < 0:
        parser.error("--mail-retention-days must be 0 or more")
    try:
        created = create_resources(
            args.table, args.bucket, queue=args.queue, ses_queue=args.ses_queue,
            mail_retention_days=args.mail_retention_days,
        )
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = {"table": args.table, "bucket": args.bucket, "queue": args.queue, "ses_queue": args.ses_queue}
    for kind, was_created in created.items():
        print(f"{LABELS[kind]} {names[kind]}: {'created' if was_created else 'already there'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
