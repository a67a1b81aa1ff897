"""In-memory stand-ins for the few S3 and DynamoDB client methods ``MailStore`` calls.

The benchmark runs the real ``MailStore`` over these, rather than a second
store class, so that what it measures is the store that ships: the same keys,
the same item, the same transaction, the same hashing. Only the network is
gone. To keep the fakes from drifting from boto3, every call can be checked
against botocore's own service model (``validate=True``: the parameter
validation a real client runs before it sends anything), and an unknown
condition expression raises instead of being ignored. The benchmark runs one
validated pass per mail before it starts timing; the timed passes skip it,
because parameter validation is the client's cost, not the handler's.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

_MODELS: dict[str, ServiceModel] = {}


def _model(service: str) -> ServiceModel:
    if service not in _MODELS:
        session = botocore.session.get_session()
        _MODELS[service] = session.get_service_model(service)
    return _MODELS[service]


def _check(service: str, operation: str, params: dict[str, Any]) -> None:
    shape = _model(service).operation_model(operation).input_shape
    assert shape is not None, f"{service} {operation} takes no input"
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def _error(operation: str, code: str, message: str, **extra: Any) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, **extra}  # what botocore's parser hands over
    return ClientError(response, operation)


class _Body:
    """What ``get_object`` hands back: a stream with ``read``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


@dataclass
class FakeS3:
    validate: bool = False
    objects: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = field(default_factory=dict)
    calls: int = 0

    def put_object(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.validate:
            _check("s3", "PutObject", params)
            checksum = params.get("ChecksumSHA256")
            body = params["Body"]
            if checksum is not None and base64.b64encode(hashlib.sha256(body).digest()).decode() != checksum:
                raise _error("PutObject", "BadDigest", "the SHA-256 you specified did not match the body")
        # A reference, not a copy: a real client streams the bytes it is given.
        meta = {k: v for k, v in params.items() if k not in ("Bucket", "Key", "Body")}
        self.objects[(params["Bucket"], params["Key"])] = (params["Body"], meta)
        return {}

    def get_object(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.validate:
            _check("s3", "GetObject", params)
        try:
            body, meta = self.objects[(params["Bucket"], params["Key"])]
        except KeyError:
            raise _error("GetObject", "NoSuchKey", "The specified key does not exist.") from None
        data = bytes(body)
        return {"Body": _Body(data), "ContentLength": len(data), "ContentType": meta.get("ContentType", ""),
                "Metadata": meta.get("Metadata", {})}

    def delete_objects(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.validate:
            _check("s3", "DeleteObjects", params)
        for entry in params["Delete"]["Objects"]:
            self.objects.pop((params["Bucket"], entry["Key"]), None)
        return {}


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


@dataclass
class FakeDynamoDB:
    validate: bool = False
    tables: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    calls: int = 0

    def _table(self, name: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self.tables.setdefault(name, {})

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.validate:
            _check("dynamodb", "TransactWriteItems", params)
        actions = params["TransactItems"]
        reasons: list[dict[str, str]] = []
        for action in actions:
            put = action.get("Put")
            if put is None:
                raise NotImplementedError(f"fake TransactWriteItems action {sorted(action)}")
            condition = put.get("ConditionExpression")
            if condition is None:
                reasons.append({"Code": "None"})
            elif condition == "attribute_not_exists(pk)":
                exists = _key(put["Item"]) in self._table(put["TableName"])
                reasons.append({"Code": "ConditionalCheckFailed" if exists else "None"})
            else:
                raise NotImplementedError(f"fake condition {condition!r}")
        if any(reason["Code"] != "None" for reason in reasons):
            # All or nothing, as DynamoDB: a failed condition writes no action.
            raise _error("TransactWriteItems", "TransactionCanceledException", "Transaction cancelled",
                         CancellationReasons=reasons)
        for action in actions:
            put = action["Put"]
            self._table(put["TableName"])[_key(put["Item"])] = put["Item"]
        return {}

    def batch_write_item(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.validate:
            _check("dynamodb", "BatchWriteItem", params)
        for table, requests in params["RequestItems"].items():
            for request in requests:
                item = request["PutRequest"]["Item"]
                self._table(table)[_key(item)] = item
        return {"UnprocessedItems": {}}

    def get_item(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.validate:
            _check("dynamodb", "GetItem", params)
        item = self._table(params["TableName"]).get(_key(params["Key"]))
        # Projections are not applied: the store reads only the attributes it asked for.
        return {} if item is None else {"Item": item}


    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.validate:
            _check("dynamodb", "BatchGetItem", params)
        responses: dict[str, list[dict[str, Any]]] = {}
        for name, request in params["RequestItems"].items():
            table = self._table(name)
            responses[name] = [table[_key(key)] for key in request["Keys"] if _key(key) in table]
        return {"Responses": responses, "UnprocessedKeys": {}}


@dataclass
class FakeSQS:
    validate: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0

    def get_queue_url(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.validate:
            _check("sqs", "GetQueueUrl", params)
        return {"QueueUrl": f"https://sqs.us-east-1.amazonaws.com/123456789012/{params['QueueName']}"}

    def send_message(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.validate:
            _check("sqs", "SendMessage", params)
        self.messages.append(params)
        return {"MessageId": str(len(self.messages))}
