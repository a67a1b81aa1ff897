"""Each Lambda function as Lambda starts it: a fresh process that imports its handler string's module, and nothing else.

A queue function's handler lives in a Blueprint module (``chalicelib.….consumer``),
and Lambda imports that module directly: ``app.py`` never runs there. Chalice's
test client cannot show that; these tests import the module alone, check that
``app`` stays unimported, and hand the function a real message.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import boto3
import pytest
from chalice.test import Client

import app as app_module
from scripts.send_mail import build_body
from scripts.sqs_poller import event_for
from tests.conftest import BUCKET, QUEUE, ROOT, SES_QUEUE, mail_path, read_headers

# What Lambda does with a handler string "module.function": import the module, call the function.
RUN_HANDLER = """
import importlib, json, sys
module, _, name = sys.argv[1].rpartition(".")
handler = getattr(importlib.import_module(module), name)
handler(json.loads(sys.stdin.read()), None)
print(json.dumps(sorted(m for m in sys.modules if m == "app" or m.startswith("chalicelib"))))
"""


def handler_string(name: str) -> str:
    [found] = [source.handler_string for source in app_module.app.event_sources if source.name == name]
    return found


def run_as_lambda(handler: str, event: dict[str, Any]) -> list[str]:
    """The modules of ours the function's process imported."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_HANDLER, handler], input=json.dumps(event), capture_output=True, text=True,
        cwd=ROOT, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


def one_message(sqs: Any, queue: str) -> dict[str, Any]:
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"message": message, "arn": arn}


@pytest.mark.parametrize(("name", "module"), [("hand_off", "chalicelib.delivery.consumer"),
                                             ("receive_ses", "chalicelib.ingress.ses.consumer")])
def test_each_queue_function_is_a_blueprint_module_of_its_area(name: str, module: str) -> None:
    assert handler_string(name) == f"{module}.{name}"


def test_hand_off_runs_a_handler_without_app_py(client: Client) -> None:
    body, content_type = build_body(
        b"From: a@example.org\r\nTo: someone@example.com\r\nMessage-ID: <entry@example.org>\r\n\r\nHello\r\n"
    )
    stored = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
    assert stored.status_code == 200
    mail_id = json.loads(stored.body)["id"]
    sqs = boto3.client("sqs")
    queued = one_message(sqs, QUEUE)
    modules = run_as_lambda(handler_string("hand_off"), event_for(queued["message"], queued["arn"], "us-east-1"))
    assert "app" not in modules
    document = json.loads(client.http.get(f"/mails/{mail_id}", headers=read_headers()).body)
    assert document["processing"] == {"status": "delivered", "attempts": 1, "error": None}


def test_receive_ses_stores_a_mail_without_app_py(client: Client) -> None:
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key="ses/entry-1",
        Body=b"From: a@example.org\r\nTo: info@example.com\r\nMessage-ID: <ses-entry@example.org>\r\n\r\nHi\r\n",
    )
    notice = {
        "notificationType": "Received", "mail": {"source": "a@example.org"},
        "receipt": {"recipients": ["info@example.com"],
                    "action": {"type": "S3", "bucketName": BUCKET, "objectKey": "ses/entry-1"}},
    }
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=SES_QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(notice))
    queued = one_message(sqs, SES_QUEUE)
    modules = run_as_lambda(handler_string("receive_ses"), event_for(queued["message"], queued["arn"], "us-east-1"))
    assert "app" not in modules
    listing = json.loads(client.http.get("/mails?to=info@example.com", headers=read_headers()).body)
    assert [mail["from"] for mail in listing["mails"]] == ["a@example.org"]
