"""The read API (``Authorization: Bearer TOKEN``): stored mail, listings, originals, attachments, retries."""

from __future__ import annotations

import re

from chalice.app import Blueprint, Response

from chalicelib.api import cursor
from chalicelib.api.downloads import download
from chalicelib.api.tokens import check_bearer
from chalicelib.errors import BadRequestError, NotFoundError
from chalicelib.storage import schema
from chalicelib.storage.store import MailStore, ObjectRef
from chalicelib.web import answer
from chalicelib.wiring import services

DEFAULT_PAGE = 20
MAX_PAGE = 100
_ID = re.compile(r"^[a-z2-7]{26}$")

blueprint = Blueprint(__name__)


def _authorized() -> MailStore:
    check_bearer(services.settings().read_tokens, blueprint.current_request.headers.get("authorization"))
    return services.store()


def _checked_id(mail_id: str) -> str:
    if not _ID.match(mail_id):
        raise NotFoundError("no mail with that id")
    return mail_id


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequestError(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(text)


def _download(store: MailStore, ref: ObjectRef) -> Response:
    found = download(store, ref, blueprint.current_app.api.binary_types)
    return Response(body=found.body, status_code=found.status, headers=dict(found.headers))


@blueprint.route("/mails", methods=["GET"])
def list_mails() -> Response:
    def read() -> Response:
        store = _authorized()
        query: dict[str, str] = dict(blueprint.current_request.query_params or {})
        mailbox = query.get("to", "").strip().lower() or None
        limit = _limit(query.get("limit"))
        secret = services.settings().cursor_secret()
        after = cursor.decode(secret, schema.box(mailbox), query["cursor"]) if query.get("cursor") else None
        page = store.list_mails(mailbox, limit, after)
        next_cursor = cursor.encode(secret, page.box, page.last) if page.last else None
        return Response(body={"mails": page.summaries, "cursor": next_cursor}, status_code=200)

    return answer("GET /mails", read)


@blueprint.route("/mails/{mail_id}", methods=["GET"])
def get_mail(mail_id: str) -> Response:
    def read() -> Response:
        store = _authorized()
        return Response(body=store.document(_checked_id(mail_id)), status_code=200)

    return answer("GET /mails/{id}", read)


@blueprint.route("/mails/{mail_id}/raw", methods=["GET"])
def get_raw(mail_id: str) -> Response:
    def read() -> Response:
        store = _authorized()
        return _download(store, store.raw(_checked_id(mail_id)))

    return answer("GET /mails/{id}/raw", read)


@blueprint.route("/mails/{mail_id}/attachments/{index}", methods=["GET"])
def get_attachment(mail_id: str, index: str) -> Response:
    def read() -> Response:
        store = _authorized()
        if not index.isdigit() or len(index) > 6:
            raise NotFoundError("no attachment with that index")
        return _download(store, store.attachment(_checked_id(mail_id), int(index)))

    return answer("GET /mails/{id}/attachments/{index}", read)


@blueprint.route("/mails/{mail_id}/retry", methods=["POST"])
def retry_mail(mail_id: str) -> Response:
    def retry() -> Response:
        _authorized()
        services.handoff().retry(_checked_id(mail_id))
        return Response(body={"id": mail_id, "status": "pending"}, status_code=202)

    return answer("POST /mails/{id}/retry", retry)
