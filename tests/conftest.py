"""Shared fixtures: moto's server over HTTP as DynamoDB and S3, and the app behind Chalice's test client."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from chalice.test import Client
from moto.server import ThreadedMotoServer

import app as app_module
from chalicelib.wiring import services
from scripts.create_resources import create_resources

# chalicelib.testing: deliver() and its mail_stack fixture, as a user's tests would load them.
pytest_plugins = ["chalicelib.testing", "tests.support.logged"]
# `make mutate` (mutmut) runs a mutant's tests fastest first, so the first to fail comes early.
if "MUTANT_UNDER_TEST" in os.environ:
    pytest_plugins.append("tests.support.fastest_first")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sendgrid"
CORPUS = Path(__file__).resolve().parent / "corpus"
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
STAGE_ENV = CONFIG["stages"]["local"]["environment_variables"]
TABLE = STAGE_ENV["MAILS_TABLE"]
BUCKET = STAGE_ENV["MAILS_BUCKET"]
QUEUE = STAGE_ENV["MAILS_QUEUE"]
SES_QUEUE = STAGE_ENV["SES_QUEUE"]
KEY, SECRET = "sendgrid", "s3cr3t-ingest-value"
TOKEN = "read-token-value-0123456789"
REPLY_SECRET = "reply-secret-value-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator request otherwise
    # The server runs in this process and reads this when a queue is purged: `aws` empties the
    # queues before each test, where AWS (and moto by default) allows one purge a minute.
    os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> str:
    """Every test talks to the emulator with fake credentials, never to AWS."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("MAIL_CREDENTIALS", "READ_TOKENS", "SENDGRID_VERIFICATION_KEY", "MAX_BODY_BYTES", "MAILS_QUEUE",
                 "REPLY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return moto_endpoint


@pytest.fixture(scope="session")
def boto_session(moto_endpoint: str) -> boto3.session.Session:
    """One session for the fixtures' own calls: a new one would load botocore's models again (a third of a second)."""
    return boto3.session.Session()


@pytest.fixture(scope="session")
def emulator(moto_endpoint: str, boto_session: boto3.session.Session) -> dict[str, Any]:
    """The fixtures' own clients of the emulator, made once: a client costs tens of milliseconds."""
    options = {"endpoint_url": moto_endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}
    return {name: boto_session.client(name, **options) for name in ("dynamodb", "s3", "sqs", "ssm")}


def _emptied(clients: dict[str, Any]) -> bool:
    """The table, bucket and queues emptied in place; False when a test changed more than their contents."""
    try:
        if clients["ssm"].describe_parameters().get("Parameters"):
            return False
        for page in clients["dynamodb"].get_paginator("scan").paginate(TableName=TABLE, ProjectionExpression="pk, sk"):
            for start in range(0, len(page["Items"]), 25):
                batch = [{"DeleteRequest": {"Key": key}} for key in page["Items"][start : start + 25]]
                clients["dynamodb"].batch_write_item(RequestItems={TABLE: batch})
        for page in clients["s3"].get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            if page.get("Contents"):
                keys = [{"Key": entry["Key"]} for entry in page["Contents"]]
                clients["s3"].delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})
        for name in (QUEUE, f"{QUEUE}-dead-letter", SES_QUEUE, f"{SES_QUEUE}-dead-letter"):
            clients["sqs"].purge_queue(QueueUrl=clients["sqs"].get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError:
        return False
    return True


_PRISTINE: set[str] = set()  # emulators whose resources only data has changed since create_resources made them


@pytest.fixture
def aws(aws_env: str, boto_session: boto3.session.Session, emulator: dict[str, Any]) -> Iterator[str]:
    """Empty resources of the local stage: emptied in place, or made again (23 calls) when a test changed them."""
    if not (aws_env in _PRISTINE and _emptied(emulator)):
        requests.post(f"{aws_env}/moto-api/reset", timeout=10).raise_for_status()
        create_resources(TABLE, BUCKET, boto_session, queue=QUEUE, ses_queue=SES_QUEUE)
        _PRISTINE.add(aws_env)
    services.reset()
    yield aws_env
    services.reset()


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, aws: str) -> str:
    """The local stage's environment, as Lambda would hold it, plus ingest credentials and read tokens."""
    for name, value in STAGE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAIL_CREDENTIALS", f"{KEY}:{SECRET},old:previous-secret")
    monkeypatch.setenv("READ_TOKENS", TOKEN)
    monkeypatch.setenv("REPLY_SECRET", REPLY_SECRET)
    services.reset()
    return aws


@pytest.fixture
def client(configured: str) -> Iterator[Client]:
    with Client(app_module.app, stage_name="local", project_dir=str(ROOT)) as test_client:
        yield test_client


@pytest.fixture
def s3(aws: str) -> Any:
    return boto3.client("s3")


@pytest.fixture
def dynamodb(aws: str) -> Any:
    return boto3.client("dynamodb")


@pytest.fixture
def log_records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def mail_path(key: str = KEY, secret: str = SECRET) -> str:
    return f"/mails?MailKey={key}&MailSecret={secret}"


def read_headers(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "*/*"}


def fixture_body(name: str) -> tuple[bytes, str]:
    """One of SendGrid's own sample payloads, with its boundary."""
    return (FIXTURES / name).read_bytes(), "multipart/form-data; boundary=xYzZY"
