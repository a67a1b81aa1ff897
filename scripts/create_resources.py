"""Create the mail table and bucket, idempotently, wherever boto3 points.

The schema is read from ``infra/resources.json``, the same CloudFormation
resources that ``scripts/package.py`` merges into Chalice's template, so the
local and the deployed schema cannot drift: a property this script does not
know how to apply is an error here rather than a silent difference. An
emulator is reached through boto3's own ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import argparse
import json
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


class SchemaError(RuntimeError):
    """infra/resources.json holds what this script cannot apply, or an existing table differs from it."""


@dataclass(frozen=True)
class Schema:
    """The two resources' Properties, with the template's parameters and conditions resolved."""

    table: dict[str, Any]
    bucket: dict[str, Any]


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
    resources = document["Resources"]
    schema = Schema(
        table=_resolve(resources["MailsTable"]["Properties"], values, conditions),
        bucket=_resolve(resources["MailsBucket"]["Properties"], values, conditions),
    )
    for kind, properties, known in (
        ("MailsTable", schema.table, TABLE_PROPERTIES),
        ("MailsBucket", schema.bucket, BUCKET_PROPERTIES),
    ):
        extra = set(properties) - known
        if extra:
            raise SchemaError(f"{kind} has {', '.join(sorted(extra))}, which create_resources does not apply")
    return schema


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


def _check_existing(name: str, description: dict[str, Any], properties: dict[str, Any]) -> None:
    """An existing table must have the keys and indexes store.py relies on; nothing else can be changed in place."""
    if description["KeySchema"] != properties["KeySchema"]:
        raise SchemaError(f"table {name} exists with another key schema: {description['KeySchema']}")
    have = {
        index["IndexName"]: index["KeySchema"] for index in description.get("GlobalSecondaryIndexes", [])
    }
    for index in properties.get("GlobalSecondaryIndexes", []):
        if have.get(index["IndexName"]) != index["KeySchema"]:
            raise SchemaError(
                f"table {name} exists without the index {index['IndexName']} as infra/resources.json defines it"
            )


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
        _check_existing(name, dynamodb.describe_table(TableName=name)["Table"], properties)
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


def create_bucket(s3: Any, name: str, properties: dict[str, Any]) -> bool:
    region = s3.meta.region_name
    kwargs: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
        created = True
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


def create_resources(
    table: str, bucket: str, session: Any = None, *, mail_retention_days: int = 0
) -> dict[str, bool]:
    """Make (or bring up to date) the table and bucket; says which of them were created now."""
    session = session or boto3.session.Session()
    schema = load_schema({"MailRetentionDays": mail_retention_days})
    return {
        "table": create_table(session.client("dynamodb"), table, schema.table),
        "bucket": create_bucket(session.client("s3"), bucket, schema.bucket),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="DynamoDB table name")
    parser.add_argument("--bucket", required=True, help="S3 bucket name")
    parser.add_argument(
        "--mail-retention-days", type=int, default=0, metavar="N",
        help="expire stored mail's S3 objects after N days (default 0: keep)",
    )
    args = parser.parse_args(argv)
    if args.mail_retention_days < 0:
        parser.error("--mail-retention-days must be 0 or more")
    created = create_resources(args.table, args.bucket, mail_retention_days=args.mail_retention_days)
    for kind, name in (("table", args.table), ("bucket", args.bucket)):
        print(f"{kind} {name}: {'created' if created[kind] else 'already there'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
