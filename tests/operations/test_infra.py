"""The schema in infra/resources.json is the one create_resources.py makes; stages, policies and deploy.py.

The emulator is conftest's moto server; every test here uses table and bucket
names of its own (or a reset) so that it does not see what another test made.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from chalicelib.config import DEFAULT_MAX_ATTEMPTS
from chalicelib.delivery.ledger import LEASE
from chalicelib.ingress.ses.ingestor import SES_PREFIX
from chalicelib.storage import schema
from scripts import create_resources as cr
from scripts import deploy as deploy_script
from scripts.package import PackageError, check_policies, check_policy, load_policy, load_stage
from tests.conftest import ROOT

INFRA = json.loads((ROOT / "infra" / "resources.json").read_text())
TABLE_PROPS = INFRA["Resources"]["MailsTable"]["Properties"]
BUCKET_PROPS = INFRA["Resources"]["MailsBucket"]["Properties"]
QUEUE_PROPS = INFRA["Resources"]["MailsQueue"]["Properties"]
DEAD_LETTER_PROPS = INFRA["Resources"]["MailsDeadLetterQueue"]["Properties"]
SES_QUEUE_PROPS = INFRA["Resources"]["SesQueue"]["Properties"]
SES_DEAD_LETTER_PROPS = INFRA["Resources"]["SesDeadLetterQueue"]["Properties"]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
DEPLOYED = ["dev", "prod"]
FOURTEEN_DAYS = 14 * 24 * 3600


def _reset(endpoint: str) -> None:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()


def _expected_lifecycle(retention_days: int) -> list[dict[str, Any]]:
    """The lifecycle rules infra/resources.json asks for, resolved by hand (not by the code under test)."""
    rules = []
    for rule in BUCKET_PROPS["LifecycleConfiguration"]["Rules"]:
        if "Fn::If" in rule:
            condition, rule, _ = rule["Fn::If"]
            assert condition == "HasMailRetention"
            if retention_days == 0:
                continue
            rule = {**rule, "ExpirationInDays": retention_days}
        api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule["Prefix"]}}
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": rule["ExpirationInDays"]}
        if "AbortIncompleteMultipartUpload" in rule:
            api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
        rules.append(api)
    return rules


def _lifecycle(s3: Any, bucket: str) -> list[dict[str, Any]]:
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return [{key: rule[key] for key in ("ID", "Status", "Filter", "Expiration", "AbortIncompleteMultipartUpload")
             if key in rule} for rule in rules]


def _index_view(indexes: list[dict[str, Any]]) -> list[tuple[str, Any, str, list[str]]]:
    return sorted(
        (
            index["IndexName"],
            index["KeySchema"],
            index["Projection"]["ProjectionType"],
            sorted(index["Projection"].get("NonKeyAttributes", [])),
        )
        for index in indexes
    )


# -- the schema ---------------------------------------------------------------


def test_the_keys_and_index_store_py_relies_on_are_in_infra() -> None:
    assert TABLE_PROPS["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    by_box, by_status = TABLE_PROPS["GlobalSecondaryIndexes"]
    assert (by_box["IndexName"], by_status["IndexName"]) == (schema.INDEX, schema.STATUS_INDEX)
    assert [key["AttributeName"] for key in by_box["KeySchema"]] == [schema.BOX, schema.ORDER]
    assert [key["AttributeName"] for key in by_status["KeySchema"]] == [schema.STATUS_BOX, schema.ORDER]
    # The last key of a page, which a cursor holds, is the table's key and the index's.
    assert schema.INDEX_KEY == (schema.PK, schema.SK, schema.BOX, schema.ORDER)
    assert schema.STATUS_INDEX_KEY == (schema.PK, schema.SK, schema.STATUS_BOX, schema.ORDER)
    for index in (by_box, by_status):
        assert {"id", "summary", "expires_at"} == set(index["Projection"]["NonKeyAttributes"])
    prefixes = {rule.get("Prefix") for rule in BUCKET_PROPS["LifecycleConfiguration"]["Rules"]}
    assert "quarantine/" in prefixes


def test_the_queue_fits_the_handoff_and_its_consumer() -> None:
    """maxReceiveCount is the attempts handoff.py makes, plus the receive that records a crashed last one;
    the visibility outlasts the consumer and its lease."""
    assert QUEUE_PROPS["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["MailsDeadLetterQueue", "Arn"]},
        "maxReceiveCount": DEFAULT_MAX_ATTEMPTS + 1,
    }
    assert QUEUE_PROPS["VisibilityTimeout"] > LEASE.total_seconds()
    for stage in DEPLOYED:
        # AWS's advice for a Lambda SQS event source: at least six times the function's timeout.
        timeout = CONFIG["stages"][stage]["lambda_functions"]["hand_off"]["lambda_timeout"]
        assert QUEUE_PROPS["VisibilityTimeout"] >= 6 * timeout
        assert timeout < LEASE.total_seconds()
    assert DEAD_LETTER_PROPS["MessageRetentionPeriod"] == FOURTEEN_DAYS
    # A standard queue's message keeps its first enqueue time in the DLQ, so the DLQ must keep it longer.
    assert QUEUE_PROPS["MessageRetentionPeriod"] < DEAD_LETTER_PROPS["MessageRetentionPeriod"]
    assert QUEUE_PROPS["SqsManagedSseEnabled"] is DEAD_LETTER_PROPS["SqsManagedSseEnabled"] is True
    # The stack generates the names, as it does the table's and bucket's (the functions get them by reference).
    assert "QueueName" not in QUEUE_PROPS
    assert "QueueName" not in DEAD_LETTER_PROPS


def test_the_ses_queue_fits_receive_ses() -> None:
    """Five receives, then the dead letters; the visibility outlasts six of receive_ses's timeouts."""
    assert SES_QUEUE_PROPS["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["SesDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    for stage in DEPLOYED:
        # A 40 MB message: read, decoded, its attachments written, well inside the timeout.
        timeout = CONFIG["stages"][stage]["lambda_functions"]["receive_ses"]["lambda_timeout"]
        assert timeout >= 120
        assert SES_QUEUE_PROPS["VisibilityTimeout"] >= 6 * timeout
    assert SES_DEAD_LETTER_PROPS["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert SES_QUEUE_PROPS["MessageRetentionPeriod"] < SES_DEAD_LETTER_PROPS["MessageRetentionPeriod"]
    # SSE-SQS (not KMS's aws/sqs key, whose policy SNS could not use): SNS can deliver to it.
    assert SES_QUEUE_PROPS["SqsManagedSseEnabled"] is SES_DEAD_LETTER_PROPS["SqsManagedSseEnabled"] is True
    assert "KmsMasterKeyId" not in SES_QUEUE_PROPS
    assert "QueueName" not in SES_QUEUE_PROPS
    assert "QueueName" not in SES_DEAD_LETTER_PROPS
    # Whether SES is on or not: receive_ses is always deployed, and its event source needs the queue.
    for name in ("SesQueue", "SesDeadLetterQueue"):
        assert "Condition" not in INFRA["Resources"][name]


SES_RESOURCES = {
    "SesTopic": "AWS::SNS::Topic",
    "SesSubscription": "AWS::SNS::Subscription",
    "SesQueuePolicy": "AWS::SQS::QueuePolicy",
    "SesBucketPolicy": "AWS::S3::BucketPolicy",
    "SesReceiptRuleSet": "AWS::SES::ReceiptRuleSet",
    "SesReceiptRule": "AWS::SES::ReceiptRule",
}
# The receipt rule's ARN, as the bucket policy's aws:SourceArn must name it.
RULE_ARN = (
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:receipt-rule-set/${RuleSet}"
    ":receipt-rule/${AWS::StackName}-store"
)
RULE_SET = {"Fn::If": ["SesOwnRuleSet", {"Ref": "SesReceiptRuleSet"}, {"Ref": "SesRuleSetName"}]}


def test_the_ses_ingress_is_off_unless_enabled() -> None:
    """EnableSes (default false) switches the whole SES side on: SendGrid-only stacks have none of it."""
    resources = INFRA["Resources"]
    assert {name: resources[name]["Type"] for name in SES_RESOURCES} == SES_RESOURCES
    assert INFRA["Parameters"]["EnableSes"]["Default"] == "false"
    assert INFRA["Parameters"]["EnableSes"]["AllowedValues"] == ["true", "false"]
    assert INFRA["Conditions"]["SesEnabled"] == {"Fn::Equals": [{"Ref": "EnableSes"}, "true"]}
    assert INFRA["Conditions"]["SesOwnRuleSet"] == {
        "Fn::And": [{"Condition": "SesEnabled"}, {"Fn::Equals": [{"Ref": "SesRuleSetName"}, ""]}]
    }
    for name in SES_RESOURCES:
        assert resources[name]["Condition"] == ("SesOwnRuleSet" if name == "SesReceiptRuleSet" else "SesEnabled")
    # Every other resource is unconditional; create_resources skips exactly the SES side.
    assert [name for name, resource in resources.items() if "Condition" in resource] == list(SES_RESOURCES)
    assert cr.DEPLOY_ONLY == SES_RESOURCES
    assert set(cr.APPLIED) | set(cr.DEPLOY_ONLY) == set(resources)
    assert not set(cr.APPLIED) & set(cr.DEPLOY_ONLY)
    # An enabled rule needs recipients: CloudFormation refuses the stack before making anything.
    assert INFRA["Parameters"]["SesRecipients"]["Type"] == "CommaDelimitedList"
    (assertion,) = INFRA["Rules"]["SesNeedsRecipients"]["Assertions"]
    assert INFRA["Rules"]["SesNeedsRecipients"]["RuleCondition"] == {"Fn::Equals": [{"Ref": "EnableSes"}, "true"]}
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Contains": [{"Ref": "SesRecipients"}, ""]}]}
    assert {output["Condition"] for output in INFRA["Outputs"].values()} == {"SesEnabled"}


def test_the_receipt_rule_stores_under_the_prefix_ses_py_reads_and_notifies_the_ses_queue() -> None:
    resources = INFRA["Resources"]
    rule = resources["SesReceiptRule"]["Properties"]
    assert rule["RuleSetName"] == RULE_SET
    assert rule["Rule"]["Name"] == {"Fn::Sub": "${AWS::StackName}-store"}
    assert rule["Rule"]["Enabled"] is True
    # SES's spam and virus scan: ses.py stores its verdicts.
    assert rule["Rule"]["ScanEnabled"] is True
    assert rule["Rule"]["TlsPolicy"] == {"Ref": "SesTlsPolicy"}
    assert INFRA["Parameters"]["SesTlsPolicy"]["AllowedValues"] == ["Optional", "Require"]
    assert rule["Rule"]["Recipients"] == {"Ref": "SesRecipients"}
    assert rule["Rule"]["Actions"] == [
        {"S3Action": {"BucketName": {"Ref": "MailsBucket"}, "ObjectKeyPrefix": SES_PREFIX,
                      "TopicArn": {"Ref": "SesTopic"}}}
    ]
    # SES checks that it may write (and publish) when the rule is made: the policies come first.
    assert set(resources["SesReceiptRule"]["DependsOn"]) == {"SesBucketPolicy", "SesQueuePolicy", "SesSubscription"}
    subscription = resources["SesSubscription"]["Properties"]
    assert subscription == {
        "TopicArn": {"Ref": "SesTopic"}, "Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["SesQueue", "Arn"]},
        # ses.parse_notice reads SES's JSON with or without SNS's envelope.
        "RawMessageDelivery": True,
    }
    queue_policy = resources["SesQueuePolicy"]["Properties"]
    assert queue_policy["Queues"] == [{"Ref": "SesQueue"}]
    assert queue_policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "AllowSesTopic", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["SesQueue", "Arn"]},
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": "SesTopic"}}},
        }
    ]


def test_ses_may_write_only_under_ses_and_only_for_our_receipt_rule() -> None:
    """AWS's recommended statement (SES Developer Guide, "Give SES permission to write to an S3 bucket")."""
    policy = INFRA["Resources"]["SesBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "MailsBucket"}
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "AllowSESPuts",
            "Effect": "Allow",
            "Principal": {"Service": "ses.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": {"Fn::Sub": "${MailsBucket.Arn}/" + SES_PREFIX + "*"},
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": {"Ref": "AWS::AccountId"},
                    "aws:SourceArn": {"Fn::Sub": [RULE_ARN, {"RuleSet": RULE_SET}]},
                }
            },
        }
    ]
    # The ARN's rule name is the rule's own.
    rule_name = INFRA["Resources"]["SesReceiptRule"]["Properties"]["Rule"]["Name"]["Fn::Sub"]
    assert RULE_ARN.endswith(":receipt-rule/" + rule_name)


def test_a_mail_retention_covers_the_originals_ses_writes() -> None:
    """store.py points a SES mail's raw_key at SES's own object: it must expire with the rest of the mail."""
    expiring = {
        rule["Fn::If"][1]["Prefix"]
        for rule in BUCKET_PROPS["LifecycleConfiguration"]["Rules"]
        if "Fn::If" in rule
    }
    assert expiring == {"mails/", SES_PREFIX}


def _queue_attributes(sqs: Any, name: str) -> dict[str, str]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return attributes


def _expected_queue(properties: dict[str, Any]) -> dict[str, str]:
    """The SQS attributes infra/resources.json asks for, written by hand (not by the code under test)."""
    return {
        name: (json.dumps(value) if isinstance(value, bool) else str(value))
        for name, value in properties.items()
        if name != "RedrivePolicy"
    }


def test_create_resources_makes_the_queues_of_infra(aws_env: str) -> None:
    _reset(aws_env)
    created = cr.create_resources("queue-check", "queue-check-bucket", queue="queue-check")
    assert created == {"table": True, "bucket": True, "queue": True}
    sqs = boto3.client("sqs")
    main, dead = _queue_attributes(sqs, "queue-check"), _queue_attributes(sqs, "queue-check-dead-letter")
    assert _expected_queue(QUEUE_PROPS).items() <= main.items()
    assert _expected_queue(DEAD_LETTER_PROPS).items() <= dead.items()
    assert main["VisibilityTimeout"] == "360"
    assert main["SqsManagedSseEnabled"] == dead["SqsManagedSseEnabled"] == "true"
    assert dead["MessageRetentionPeriod"] == str(FOURTEEN_DAYS)
    assert json.loads(main["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead["QueueArn"],
        "maxReceiveCount": QUEUE_PROPS["RedrivePolicy"]["maxReceiveCount"],
    }
    assert "RedrivePolicy" not in dead
    # Without a queue, none is made and the answer has no "queue".
    assert cr.create_resources("queue-check", "queue-check-bucket") == {"table": False, "bucket": False}


def test_create_resources_makes_the_ses_queue_of_infra(aws_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    _reset(aws_env)
    created = cr.create_resources("ses-check", "ses-check-bucket", queue="ses-check-handoff", ses_queue="ses-check-ses")
    assert created == {"table": True, "bucket": True, "queue": True, "ses_queue": True}
    sqs = boto3.client("sqs")
    main, dead = _queue_attributes(sqs, "ses-check-ses"), _queue_attributes(sqs, "ses-check-ses-dead-letter")
    assert _expected_queue(SES_QUEUE_PROPS).items() <= main.items()
    assert _expected_queue(SES_DEAD_LETTER_PROPS).items() <= dead.items()
    assert main["VisibilityTimeout"] == "720"
    assert json.loads(main["RedrivePolicy"]) == {"deadLetterTargetArn": dead["QueueArn"], "maxReceiveCount": 5}
    # The two pairs are apart: the handoff queue's dead letters are its own.
    handoff = _queue_attributes(sqs, "ses-check-handoff")
    assert json.loads(handoff["RedrivePolicy"])["deadLetterTargetArn"].endswith(":ses-check-handoff-dead-letter")
    assert handoff["VisibilityTimeout"] == "360"
    # Nothing of the deploy-only SES side: no topic, no bucket policy, no receipt rule.
    assert boto3.client("sns").list_topics()["Topics"] == []
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        boto3.client("s3").get_bucket_policy(Bucket="ses-check-bucket")
    assert cr.main(["--table", "ses-check", "--bucket", "ses-check-bucket", "--ses-queue", "ses-check-ses"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "table ses-check: already there",
        "bucket ses-check-bucket: already there",
        "SES queue ses-check-ses: already there",
    ]


def test_the_two_queues_must_be_two(aws_env: str) -> None:
    _reset(aws_env)
    with pytest.raises(cr.SchemaError, match="must be two queues"):
        cr.create_resources("two-check", "two-check-bucket", queue="same", ses_queue="same")
    with pytest.raises(cr.SchemaError, match="queue name"):
        cr.create_resources("two-check", "two-check-bucket", queue="fine", ses_queue="not.fine")
    assert boto3.client("sqs").list_queues().get("QueueUrls", []) == []
    assert boto3.client("dynamodb").list_tables()["TableNames"] == []


def test_create_resources_brings_an_existing_queue_up_to_date(
    aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _reset(aws_env)
    sqs = boto3.client("sqs")
    sqs.create_queue(QueueName="old-queue", Attributes={"VisibilityTimeout": "30"})
    arguments = ["--table", "old-queue-table", "--bucket", "old-queue-bucket", "--queue", "old-queue"]
    assert cr.main(arguments) == 0
    assert capsys.readouterr().out.splitlines() == [
        "table old-queue-table: created",
        "bucket old-queue-bucket: created",
        "queue old-queue: already there",
    ]
    main = _queue_attributes(sqs, "old-queue")
    assert _expected_queue(QUEUE_PROPS).items() <= main.items()
    assert json.loads(main["RedrivePolicy"])["deadLetterTargetArn"].endswith(":old-queue-dead-letter")
    assert cr.main(arguments) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "queue old-queue: already there"


def test_a_queue_name_sqs_would_refuse_is_an_error_before_anything_is_made(
    aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _reset(aws_env)
    too_long = "q" * (80 - len("-dead-letter") + 1)
    for name in (too_long, "with.dot", "handoff.fifo"):
        with pytest.raises(cr.SchemaError, match="queue name"):
            cr.create_resources("name-check", "name-check-bucket", queue=name)
    assert cr.main(["--table", "name-check", "--bucket", "name-check-bucket", "--queue", too_long]) == 2
    assert "queue name" in capsys.readouterr().err
    assert boto3.client("sqs").list_queues().get("QueueUrls", []) == []
    assert boto3.client("dynamodb").list_tables()["TableNames"] == []


def test_create_resources_makes_the_schema_of_infra(aws_env: str) -> None:
    _reset(aws_env)
    cr.create_resources("schema-check", "schema-check-bucket")
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")

    table = dynamodb.describe_table(TableName="schema-check")["Table"]
    assert table["KeySchema"] == TABLE_PROPS["KeySchema"]
    key = lambda item: item["AttributeName"]  # noqa: E731
    assert sorted(table["AttributeDefinitions"], key=key) == sorted(TABLE_PROPS["AttributeDefinitions"], key=key)
    assert _index_view(table["GlobalSecondaryIndexes"]) == _index_view(TABLE_PROPS["GlobalSecondaryIndexes"])
    assert table["BillingModeSummary"]["BillingMode"] == TABLE_PROPS["BillingMode"] == "PAY_PER_REQUEST"
    # SSEEnabled true in CloudFormation means the AWS managed KMS key, as Enabled does in the API.
    assert TABLE_PROPS["SSESpecification"] == {"SSEEnabled": True}
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert table["SSEDescription"]["SSEType"] == "KMS"
    ttl = dynamodb.describe_time_to_live(TableName="schema-check")["TimeToLiveDescription"]
    expiry_attribute = TABLE_PROPS["TimeToLiveSpecification"]["AttributeName"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": expiry_attribute}
    backups = dynamodb.describe_continuous_backups(TableName="schema-check")["ContinuousBackupsDescription"]
    assert TABLE_PROPS["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    block = s3.get_public_access_block(Bucket="schema-check-bucket")["PublicAccessBlockConfiguration"]
    assert block == BUCKET_PROPS["PublicAccessBlockConfiguration"]
    assert all(block.values())
    encryption = s3.get_bucket_encryption(Bucket="schema-check-bucket")["ServerSideEncryptionConfiguration"]
    assert [rule["ApplyServerSideEncryptionByDefault"] for rule in encryption["Rules"]] == [
        rule["ServerSideEncryptionByDefault"]
        for rule in BUCKET_PROPS["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    ]
    ownership = s3.get_bucket_ownership_controls(Bucket="schema-check-bucket")["OwnershipControls"]
    assert ownership == BUCKET_PROPS["OwnershipControls"]
    assert _lifecycle(s3, "schema-check-bucket") == _expected_lifecycle(0)


def test_a_mail_retention_adds_an_expiry_for_mail_and_taking_it_away_removes_it(aws_env: str) -> None:
    _reset(aws_env)
    s3 = boto3.client("s3")
    cr.create_resources("retention-check", "retention-check-bucket", mail_retention_days=400)
    assert _lifecycle(s3, "retention-check-bucket") == _expected_lifecycle(400)
    assert {"ID": "expire-mail", "Status": "Enabled", "Filter": {"Prefix": "mails/"},
            "Expiration": {"Days": 400}} in _lifecycle(s3, "retention-check-bucket")
    cr.create_resources("retention-check", "retention-check-bucket")
    assert _lifecycle(s3, "retention-check-bucket") == _expected_lifecycle(0)


def test_create_resources_is_idempotent(aws_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    _reset(aws_env)
    arguments = ["--table", "idem-table", "--bucket", "idem-bucket"]
    assert cr.main(arguments) == 0
    assert capsys.readouterr().out.splitlines() == ["table idem-table: created", "bucket idem-bucket: created"]
    assert cr.main(arguments) == 0
    assert capsys.readouterr().out.splitlines() == [
        "table idem-table: already there",
        "bucket idem-bucket: already there",
    ]


def test_an_existing_table_with_other_keys_is_refused_not_reused(aws_env: str) -> None:
    _reset(aws_env)
    boto3.client("dynamodb").create_table(
        TableName="old-table", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    with pytest.raises(cr.SchemaError, match="another key schema"):
        cr.create_resources("old-table", "old-table-bucket")


def test_a_table_made_before_an_index_gets_it_and_one_with_other_keys_is_refused(aws_env: str) -> None:
    """A kept make dev table from before by_status existed is brought up to the template, in place."""
    _reset(aws_env)
    dynamodb = boto3.client("dynamodb")
    by_box = TABLE_PROPS["GlobalSecondaryIndexes"][0]
    dynamodb.create_table(
        TableName="older-table", BillingMode="PAY_PER_REQUEST", KeySchema=TABLE_PROPS["KeySchema"],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "box", "order")],
        GlobalSecondaryIndexes=[by_box],
    )
    assert cr.create_resources("older-table", "older-table-bucket")["table"] is False
    table = dynamodb.describe_table(TableName="older-table")["Table"]
    assert _index_view(table["GlobalSecondaryIndexes"]) == _index_view(TABLE_PROPS["GlobalSecondaryIndexes"])
    dynamodb.delete_table(TableName="older-table")
    other = {**by_box, "IndexName": "by_status"}  # the name, with by_box's keys
    dynamodb.create_table(
        TableName="older-table", BillingMode="PAY_PER_REQUEST", KeySchema=TABLE_PROPS["KeySchema"],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "box", "order")],
        GlobalSecondaryIndexes=[by_box, other],
    )
    with pytest.raises(cr.SchemaError, match="without the index by_status"):
        cr.create_resources("older-table", "older-table-bucket")


def test_a_property_create_resources_cannot_apply_is_an_error(tmp_path: Path) -> None:
    template = copy.deepcopy(INFRA)
    template["Resources"]["MailsTable"]["Properties"]["StreamSpecification"] = {"StreamViewType": "NEW_IMAGE"}
    path = tmp_path / "resources.json"
    path.write_text(json.dumps(template))
    with pytest.raises(cr.SchemaError, match="StreamSpecification"):
        cr.load_schema(template=path)
    with pytest.raises(cr.SchemaError, match="no parameter"):
        cr.load_schema({"Retention": 1})
    for resource, extra in (("MailsQueue", {"KmsMasterKeyId": "alias/aws/sqs"}),
                            ("MailsDeadLetterQueue", {"FifoQueue": True}),
                            ("MailsDeadLetterQueue", {"RedrivePolicy": {"maxReceiveCount": 3}})):
        template = copy.deepcopy(INFRA)
        template["Resources"][resource]["Properties"].update(extra)
        path.write_text(json.dumps(template))
        with pytest.raises(cr.SchemaError, match=f"{resource} has {next(iter(extra))}"):
            cr.load_schema(template=path)
    template = copy.deepcopy(INFRA)
    template["Resources"]["MailsQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] = "arn:aws:sqs:x"
    path.write_text(json.dumps(template))
    with pytest.raises(cr.SchemaError, match="must target MailsDeadLetterQueue"):
        cr.load_schema(template=path)
    template = copy.deepcopy(INFRA)
    template["Resources"]["SesQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] = {
        "Fn::GetAtt": ["MailsDeadLetterQueue", "Arn"]}
    path.write_text(json.dumps(template))
    with pytest.raises(cr.SchemaError, match="SesQueue's RedrivePolicy must target SesDeadLetterQueue"):
        cr.load_schema(template=path)
    for resource, extra in (("SesQueue", {"FifoQueue": True}),
                            ("SesDeadLetterQueue", {"RedrivePolicy": {"maxReceiveCount": 1}})):
        template = copy.deepcopy(INFRA)
        template["Resources"][resource]["Properties"].update(extra)
        path.write_text(json.dumps(template))
        with pytest.raises(cr.SchemaError, match=f"{resource} has "):
            cr.load_schema(template=path)


def _with(tmp_path: Path, change: Any) -> Path:
    template = copy.deepcopy(INFRA)
    change(template)
    path = tmp_path / "resources.json"
    path.write_text(json.dumps(template))
    return path


def test_every_resource_of_infra_is_made_or_knowingly_skipped(tmp_path: Path) -> None:
    """The drift guard: a new resource must be made by create_resources or listed, honestly, as deploy-only."""
    resources = lambda template: template["Resources"]  # noqa: E731
    new_topic = _with(tmp_path, lambda t: resources(t).update(Alarms={"Type": "AWS::SNS::Topic"}))
    with pytest.raises(cr.SchemaError, match=r"has Alarms \(AWS::SNS::Topic\), which create_resources neither makes"):
        cr.load_schema(template=new_topic)
    # A deploy-only resource that every stack would have is no longer only a deployment's.
    unconditional = _with(tmp_path, lambda t: resources(t)["SesTopic"].pop("Condition"))
    with pytest.raises(cr.SchemaError, match="SesTopic is deploy-only but has no Condition"):
        cr.load_schema(template=unconditional)
    # Nor is one that is on by default.
    on = _with(tmp_path, lambda t: t["Parameters"]["EnableSes"].update(Default="true"))
    with pytest.raises(cr.SchemaError, match=r"SesTopic is on for these parameters \(SesEnabled\)"):
        cr.load_schema(template=on)
    with pytest.raises(cr.SchemaError, match="exists only in a CloudFormation deployment"):
        cr.load_schema({"EnableSes": "true", "SesRecipients": "example.com"})
    # The skip list may not outlive what it names, nor name it under another type.
    gone = _with(tmp_path, lambda t: resources(t).pop("SesReceiptRule"))
    with pytest.raises(cr.SchemaError, match="has no SesReceiptRule"):
        cr.load_schema(template=gone)
    retyped = _with(tmp_path, lambda t: resources(t)["SesTopic"].update(Type="AWS::SQS::Queue"))
    with pytest.raises(cr.SchemaError, match="SesTopic is a AWS::SQS::Queue; create_resources expects"):
        cr.load_schema(template=retyped)
    # A made resource cannot be conditional: create_resources would make it whatever the condition says.
    conditional = _with(tmp_path, lambda t: resources(t)["SesQueue"].update(Condition="SesEnabled"))
    with pytest.raises(cr.SchemaError, match="SesQueue has a Condition"):
        cr.load_schema(template=conditional)
    # The template as it is: the SES side off, everything else made.
    schema = cr.load_schema()
    assert schema.ses_queue["VisibilityTimeout"] == SES_QUEUE_PROPS["VisibilityTimeout"]


# -- stages and policies ------------------------------------------------------


def test_the_local_stage_keeps_its_names() -> None:
    assert CONFIG["stages"]["local"]["environment_variables"] == {
        "MAILS_TABLE": "mails-local",
        "MAILS_BUCKET": "mails-local",
        "MAILS_QUEUE": "mails-local-handoff",
        "SES_QUEUE": "mails-local-ses",
        "METRICS_NAMESPACE": "inbound-mail/local",
        "CONSOLE": "on",
        "CONSOLE_COMPOSE": "on",
    }


@pytest.mark.parametrize("stage", ["local", *DEPLOYED])
def test_each_stage_counts_in_a_namespace_of_its_own(stage: str) -> None:
    """The EMF metrics (chalicelib/metrics.py) and the alarms on them (infra/resources.json) meet there."""
    assert CONFIG["stages"][stage]["environment_variables"]["METRICS_NAMESPACE"] == f"inbound-mail/{stage}"


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_handoff_consumer_has_its_own_settings_and_only_the_reply_secret(stage: str) -> None:
    settings = CONFIG["stages"][stage]
    assert settings["environment_variables"]["MAILS_QUEUE"] == f"inbound-mail-{stage}-handoff"
    hand_off = settings["lambda_functions"]["hand_off"]
    assert hand_off["iam_policy_file"] == f"policy-{stage}-handoff.json"
    assert hand_off["lambda_timeout"] == 60
    assert hand_off["lambda_memory_size"] >= 128
    # It reads neither ingest credentials nor read tokens; the replies mailbox needs the key of its addresses.
    reply_secret = f"/inbound-mail/{stage}/reply-secret"
    assert hand_off["environment_variables"] == {
        "MAIL_CREDENTIALS_PARAMETER": "", "READ_TOKENS_PARAMETER": "", "REPLY_SECRET_PARAMETER": reply_secret,
    }
    loaded = load_stage(stage)
    assert loaded.function("hand_off").parameters == {"REPLY_SECRET_PARAMETER": reply_secret}
    assert set(loaded.function("api_handler").parameters) == {"MAIL_CREDENTIALS_PARAMETER", "READ_TOKENS_PARAMETER"}


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_ses_consumer_has_its_own_settings_and_no_secrets(stage: str) -> None:
    settings = CONFIG["stages"][stage]
    assert settings["environment_variables"]["SES_QUEUE"] == f"inbound-mail-{stage}-ses"
    receive_ses = settings["lambda_functions"]["receive_ses"]
    assert receive_ses["iam_policy_file"] == f"policy-{stage}-ses.json"
    # A 40 MB message read whole, decoded, its attachments written; memory measured (docs/design/performance.md).
    assert receive_ses["lambda_timeout"] == 120
    assert receive_ses["lambda_memory_size"] == 1024
    assert receive_ses["environment_variables"] == {"MAIL_CREDENTIALS_PARAMETER": "", "READ_TOKENS_PARAMETER": ""}
    loaded = load_stage(stage)
    assert loaded.ses_queue == f"inbound-mail-{stage}-ses"
    assert loaded.function("receive_ses").parameters == {}
    assert loaded.function("receive_ses").policy_file == ROOT / ".chalice" / f"policy-{stage}-ses.json"


@pytest.mark.parametrize("stage", DEPLOYED)
def test_deployed_stages_read_secrets_from_ssm_and_fit_api_gateway(stage: str) -> None:
    settings = CONFIG["stages"][stage]
    env = settings["environment_variables"]
    assert not {"MAIL_CREDENTIALS", "READ_TOKENS", "SENDGRID_VERIFICATION_KEY"} & set(env)
    assert env["MAIL_CREDENTIALS_PARAMETER"] == f"/inbound-mail/{stage}/mail-credentials"
    assert env["READ_TOKENS_PARAMETER"] == f"/inbound-mail/{stage}/read-tokens"
    # API Gateway gives up on an integration after 29 s; the function must stop first.
    assert settings["lambda_timeout"] < 29
    assert settings["api_gateway_endpoint_type"] == "REGIONAL"
    assert settings["lambda_memory_size"] >= 512
    assert CONFIG.get("autogen_policy", settings.get("autogen_policy")) is False


def _grants(policy: dict[str, Any]) -> set[tuple[str, str]]:
    pairs = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        pairs |= {(action, resource) for action in actions for resource in resources}
    return pairs


LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
# X-Ray's write actions (the stages' "xray": true) name no resource.
TRACING = {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}


def expected_grants(stage: str) -> dict[str, set[tuple[str, str]]]:
    """What each function calls, by policy file; ARNs as the policy files write them."""
    env = CONFIG["stages"][stage]["environment_variables"]
    table = f"arn:aws:dynamodb:*:*:table/{env['MAILS_TABLE']}"
    bucket = f"arn:aws:s3:::{env['MAILS_BUCKET']}"
    queue = f"arn:aws:sqs:*:*:{env['MAILS_QUEUE']}"
    logs = f"arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-{stage}"
    ses_queue = f"arn:aws:sqs:*:*:{env['SES_QUEUE']}"
    return {
        f"policy-{stage}.json": {
            # TransactWriteItems is authorized as one PutItem per Put action; UpdateItem re-queues a failed mail.
            *{(action, table) for action in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:BatchWriteItem",
                                             "dynamodb:Query", "dynamodb:UpdateItem")},
            ("dynamodb:Query", f"{table}/index/*"),
            # DeleteObjects is authorized as s3:DeleteObject per key.
            *{(action, f"{bucket}/mails/*") for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject")},
            ("s3:PutObject", f"{bucket}/quarantine/*"),
            # The stored mail's id onto the queue (ingest, POST /mails/{id}/retry).
            ("sqs:GetQueueUrl", queue), ("sqs:SendMessage", queue),
            *{("ssm:GetParameter", f"arn:aws:ssm:*:*:parameter{env[name]}")
              for name in ("MAIL_CREDENTIALS_PARAMETER", "READ_TOKENS_PARAMETER")},
            *TRACING,
            *{(action, f"{logs}:*") for action in LOG_ACTIONS},
        },
        f"policy-{stage}-handoff.json": {
            # The ledger (GetItem, UpdateItem), the stored mail (GetItem, S3 for a large document) and the
            # replies mailbox's thread entries (PutItem, Query on the table itself, not an index).
            *{(action, table) for action in ("dynamodb:GetItem", "dynamodb:UpdateItem",
                                             "dynamodb:PutItem", "dynamodb:Query")},
            ("s3:GetObject", f"{bucket}/mails/*"),
            # The event source (Receive, Delete, GetQueueAttributes) and the backoff (GetQueueUrl, ChangeVisibility).
            *{(action, queue) for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                                             "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl")},
            # The key the replies mailbox verifies reply addresses with.
            ("ssm:GetParameter", f"arn:aws:ssm:*:*:parameter/inbound-mail/{stage}/reply-secret"),
            *TRACING,
            *{(action, f"{logs}-hand_off:*") for action in LOG_ACTIONS},
        },
        f"policy-{stage}-ses.json": {
            # store.save: the commit (TransactWriteItems of Puts, authorized as PutItem), a duplicate's
            # status (GetItem) and mailboxes beyond the transaction (BatchWriteItem). No UpdateItem, no Query.
            *{(action, table) for action in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:BatchWriteItem")},
            # The message SES wrote (read_key; the source of quarantine_copy's CopyObject)...
            ("s3:GetObject", f"{bucket}/ses/*"),
            # ...its attachments and large document, and a duplicate's own objects removed (DeleteObjects)...
            ("s3:PutObject", f"{bucket}/mails/*"), ("s3:DeleteObject", f"{bucket}/mails/*"),
            # ...and the CopyObject's target. Never a write under ses/: that is SES's.
            ("s3:PutObject", f"{bucket}/quarantine/*"),
            ("sqs:GetQueueUrl", queue), ("sqs:SendMessage", queue),
            # The event source only: receive_ses changes no visibility (a failure waits out the timeout).
            *{(action, ses_queue) for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                 "sqs:GetQueueAttributes")},
            *TRACING,
            *{(action, f"{logs}-receive_ses:*") for action in LOG_ACTIONS},
        },
    }


@pytest.mark.parametrize("stage", DEPLOYED)
def test_policy_files_grant_exactly_what_the_code_calls(stage: str) -> None:
    loaded = load_stage(stage)
    for name, expected in expected_grants(stage).items():
        path = ROOT / ".chalice" / name
        policy = load_policy(loaded, path)
        assert _grants(policy) == expected, name
        assert check_policy(policy, loaded, path) == []
    assert check_policies(loaded) == []


@pytest.mark.parametrize("policy_name", ["policy-dev.json", "policy-dev-handoff.json", "policy-dev-ses.json"])
@pytest.mark.parametrize(
    ("resource", "complaint"),
    [
        # "*" only for X-Ray's write actions, which name no resource.
        ("*", '"*" is a resource only for xray:PutTelemetryRecords and xray:PutTraceSegments'),
        ("arn:aws:s3:::someone-elses-bucket/*", "not one of stage dev's resources"),
        ("arn:aws:dynamodb:*:*:table/inbound-mail-prod", "not one of stage dev's resources"),
        ("arn:aws:sqs:*:*:*", "not one of stage dev's resources"),
        ("arn:aws:sqs:*:*:inbound-mail-prod-handoff", "not one of stage dev's resources"),
        # No function reads the dead-letter queue: an operator does, with their own credentials.
        ("arn:aws:sqs:*:*:inbound-mail-dev-handoff-dead-letter", "not one of stage dev's resources"),
        ("arn:aws:sqs:*:*:inbound-mail-dev-ses-dead-letter", "not one of stage dev's resources"),
        ("arn:aws:sqs:*:*:inbound-mail-prod-ses", "not one of stage dev's resources"),
    ],
)
def test_a_policy_naming_anything_else_is_refused(policy_name: str, resource: str, complaint: str) -> None:
    stage = load_stage("dev")
    path = ROOT / ".chalice" / policy_name
    policy = copy.deepcopy(load_policy(stage, path))
    policy["Statement"][0]["Resource"].append(resource)
    assert any(complaint in problem for problem in check_policy(policy, stage, path))


def test_a_policy_file_cannot_grant_another_functions_log_group() -> None:
    stage = load_stage("dev")
    policy = copy.deepcopy(load_policy(stage))
    logs = next(s for s in policy["Statement"] if s["Sid"] == "Logs")
    logs["Resource"].append("arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-dev-hand_off:*")
    assert check_policy(policy, stage) == [
        "policy-dev.json names the log group of hand_off, whose policy file is policy-dev-handoff.json"
    ]


def test_a_consumer_policy_without_the_queue_is_refused() -> None:
    stage = load_stage("dev")
    path = ROOT / ".chalice" / "policy-dev-handoff.json"
    policy = copy.deepcopy(load_policy(stage, path))
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "Handoff"]
    assert check_policy(policy, stage, path) == [
        "policy-dev-handoff.json grants nothing on queue inbound-mail-dev-handoff, which its functions use"
    ]


def test_the_ses_consumer_policy_needs_both_queues() -> None:
    """receive_ses consumes the SES queue and sends to the handoff queue; the REST API's needs only the latter."""
    stage = load_stage("dev")
    path = ROOT / ".chalice" / "policy-dev-ses.json"
    for sid, queue in (("SesNotifications", "inbound-mail-dev-ses"), ("Handoff", "inbound-mail-dev-handoff")):
        policy = copy.deepcopy(load_policy(stage, path))
        policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != sid]
        assert check_policy(policy, stage, path) == [
            f"policy-dev-ses.json grants nothing on queue {queue}, which its functions use"
        ]
    assert "inbound-mail-dev-ses" not in json.dumps(load_policy(stage))


@pytest.mark.parametrize("variable", ["MAILS_QUEUE", "SES_QUEUE"])
def test_a_stage_without_a_queue_is_refused(tmp_path: Path, variable: str) -> None:
    (tmp_path / ".chalice").mkdir()
    config = copy.deepcopy(CONFIG)
    del config["stages"]["dev"]["environment_variables"][variable]
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    with pytest.raises(PackageError, match=f"stage dev sets no {variable}"):
        load_stage("dev", tmp_path)


def test_a_stage_with_one_queue_for_both_or_per_function_queues_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".chalice").mkdir()
    config = copy.deepcopy(CONFIG)
    config["stages"]["dev"]["environment_variables"]["SES_QUEUE"] = "inbound-mail-dev-handoff"
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    with pytest.raises(PackageError, match="gives MAILS_QUEUE and SES_QUEUE one name"):
        load_stage("dev", tmp_path)
    config = copy.deepcopy(CONFIG)
    config["stages"]["dev"]["lambda_functions"]["receive_ses"]["environment_variables"]["SES_QUEUE"] = "other"
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    with pytest.raises(PackageError, match="gives a function another SES_QUEUE"):
        load_stage("dev", tmp_path)


def test_a_policy_that_leaves_out_a_parameter_is_refused() -> None:
    stage = load_stage("dev")
    policy = copy.deepcopy(load_policy(stage))
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "Secrets"]
    problems = check_policy(policy, stage)
    assert any("/inbound-mail/dev/read-tokens" in problem for problem in problems)


# -- deploy.py against the emulator ------------------------------------------


def _deploy(capsys: pytest.CaptureFixture[str], **options: Any) -> str:
    deploy_script.deploy("dev", session=boto3.session.Session(), run_chalice=False, **options)
    return capsys.readouterr().out


def test_deploy_makes_resources_and_secure_parameters_without_printing_secrets(
    aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _reset(aws_env)
    out = _deploy(capsys)
    ssm = boto3.client("ssm")
    values = {}
    for name in ("/inbound-mail/dev/mail-credentials", "/inbound-mail/dev/read-tokens"):
        parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        assert parameter["Type"] == "SecureString"
        values[name] = parameter["Value"]
        assert f"parameter {name}: created" in out
        assert f"aws ssm get-parameter --name {name} --with-decryption" in out
    key, _, secret = values["/inbound-mail/dev/mail-credentials"].partition(":")
    assert key.startswith("sendgrid-")
    assert len(secret) >= 40
    assert len(values["/inbound-mail/dev/read-tokens"]) >= 40
    assert secret not in out
    assert values["/inbound-mail/dev/read-tokens"] not in out
    assert f"MailKey is {key}" in out
    assert "table inbound-mail-dev: created" in out
    assert "bucket inbound-mail-dev-mails: created" in out
    assert "queue inbound-mail-dev-handoff: created" in out
    assert "SES queue inbound-mail-dev-ses: created" in out
    boto3.client("dynamodb").describe_table(TableName="inbound-mail-dev")
    sqs = boto3.client("sqs")
    assert _queue_attributes(sqs, "inbound-mail-dev-handoff")["VisibilityTimeout"] == "360"
    assert _queue_attributes(sqs, "inbound-mail-dev-handoff-dead-letter")["MessageRetentionPeriod"] == str(
        FOURTEEN_DAYS
    )
    assert _queue_attributes(sqs, "inbound-mail-dev-ses")["VisibilityTimeout"] == "720"
    assert json.loads(_queue_attributes(sqs, "inbound-mail-dev-ses")["RedrivePolicy"])[
        "deadLetterTargetArn"].endswith(":inbound-mail-dev-ses-dead-letter")

    again = _deploy(capsys)
    assert "parameter /inbound-mail/dev/mail-credentials: already there" in again
    assert "table inbound-mail-dev: already there" in again
    assert "queue inbound-mail-dev-handoff: already there" in again
    assert "SES queue inbound-mail-dev-ses: already there" in again
    assert ssm.get_parameter(Name="/inbound-mail/dev/mail-credentials", WithDecryption=True)[
        "Parameter"]["Value"] == values["/inbound-mail/dev/mail-credentials"]


def test_deploy_shows_secrets_only_when_asked(aws_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    _reset(aws_env)
    out = _deploy(capsys, parameters_only=True, show_secrets=True)
    value = boto3.client("ssm").get_parameter(Name="/inbound-mail/dev/read-tokens", WithDecryption=True)[
        "Parameter"]["Value"]
    assert f"value: {value}" in out
    # --parameters-only leaves the table, bucket and queues to CloudFormation.
    assert "inbound-mail-dev" not in boto3.client("dynamodb").list_tables()["TableNames"]
    assert boto3.client("sqs").list_queues().get("QueueUrls", []) == []


def test_deploy_runs_chalice_with_the_stages_queue_for_app_py_to_read(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """app.py names hand_off's and receive_ses's queues at import: chalice deploy must see the stage's."""
    _reset(aws_env)
    monkeypatch.setenv("MAILS_QUEUE", "mails-local-handoff")
    monkeypatch.setenv("SES_QUEUE", "mails-local-ses")
    runs: list[tuple[list[str], dict[str, str]]] = []

    def run(command: list[str], *, env: dict[str, str], check: bool) -> subprocess.CompletedProcess[str]:
        runs.append((command, env))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(deploy_script.subprocess, "run", run)
    deploy_script.deploy("dev", session=boto3.session.Session())
    ((command, env),) = runs
    assert command[-3:] == ["deploy", "--stage", "dev"]
    assert env["MAILS_QUEUE"] == "inbound-mail-dev-handoff"
    assert env["SES_QUEUE"] == "inbound-mail-dev-ses"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    out = capsys.readouterr().out
    assert "queue inbound-mail-dev-handoff: created" in out
    assert "SES queue inbound-mail-dev-ses: created" in out


def test_deploy_refuses_a_plain_string_parameter(aws_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    _reset(aws_env)
    boto3.client("ssm").put_parameter(Name="/inbound-mail/dev/read-tokens", Value="visible", Type="String")
    with pytest.raises(deploy_script.DeployError, match="must be a SecureString"):
        _deploy(capsys, parameters_only=True)


def test_deploy_refuses_a_retention_the_stage_does_not_have(aws_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    # The items' expiry comes from the stage's MAIL_RETENTION_DAYS; the objects' may not differ from it.
    _reset(aws_env)
    with pytest.raises(deploy_script.DeployError, match="differs from MAIL_RETENTION_DAYS=0"):
        _deploy(capsys, mail_retention_days=30)


def test_the_webhook_url_comes_from_chalices_deployed_record(tmp_path: Path) -> None:
    record = tmp_path / ".chalice" / "deployed" / "dev.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"resources": [
        {"name": "api_handler", "resource_type": "lambda_function"},
        {"name": "rest_api", "rest_api_url": "https://abc.execute-api.eu-west-1.amazonaws.com/dev/"},
    ]}))
    assert deploy_script.rest_api_url(tmp_path, "dev") == "https://abc.execute-api.eu-west-1.amazonaws.com/dev/"
    assert deploy_script.rest_api_url(tmp_path, "prod") is None


def test_deploy_stops_with_a_message_for_an_unknown_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy_script.main(["--stage", "staging", "--no-chalice"]) == 2
    assert "no stage 'staging'" in capsys.readouterr().err


def test_deploy_needs_a_region(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert deploy_script.main(["--stage", "dev", "--no-chalice"]) == 2
    assert "no AWS region" in capsys.readouterr().err


def test_a_parameter_that_cannot_be_generated_must_exist_first(
    aws_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SendGrid's verification key is SendGrid's to give: deploy.py asks for it rather than inventing one."""
    _reset(aws_env)
    (tmp_path / ".chalice").mkdir()
    config = copy.deepcopy(CONFIG)
    name = "/inbound-mail/dev/verification-key"
    config["stages"]["dev"]["environment_variables"]["SENDGRID_VERIFICATION_KEY_PARAMETER"] = name
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    policy = load_policy(load_stage("dev"))
    (tmp_path / ".chalice" / "policy-dev.json").write_text(json.dumps(policy))
    for own in ("policy-dev-handoff.json", "policy-dev-ses.json"):
        (tmp_path / ".chalice" / own).write_text((ROOT / ".chalice" / own).read_text())
    # hand_off and receive_ses inherit the stage's variable, and would read the parameter too...
    problems = check_policies(load_stage("dev", tmp_path))
    assert f"policy-dev-handoff.json grants nothing on parameter {name}, which its functions use" in problems
    assert f"policy-dev-ses.json grants nothing on parameter {name}, which its functions use" in problems
    # ...unless their own environment blanks it, as it does the others (docs/operations/deploy.md).
    for function in ("hand_off", "receive_ses"):
        config["stages"]["dev"]["lambda_functions"][function]["environment_variables"][
            "SENDGRID_VERIFICATION_KEY_PARAMETER"] = ""
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    with pytest.raises(deploy_script.DeployError, match=f"grants nothing on parameter {name}"):
        deploy_script.deploy("dev", project_dir=tmp_path, session=boto3.session.Session(), parameters_only=True)
    next(s for s in policy["Statement"] if s["Sid"] == "Secrets")["Resource"].append(
        f"arn:aws:ssm:*:*:parameter{name}"
    )
    (tmp_path / ".chalice" / "policy-dev.json").write_text(json.dumps(policy))
    with pytest.raises(deploy_script.DeployError, match="cannot be generated"):
        deploy_script.deploy("dev", project_dir=tmp_path, session=boto3.session.Session(), parameters_only=True)
    boto3.client("ssm").put_parameter(Name=name, Value="MFkw...", Type="SecureString")
    deploy_script.deploy("dev", project_dir=tmp_path, session=boto3.session.Session(), parameters_only=True)
    assert f"parameter {name}: already there" in capsys.readouterr().out
