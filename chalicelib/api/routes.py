"""The read API (``Authorization: Bearer TOKEN``): stored mail, listings, originals, messages, attachments, retries.

A mail outside the token's scope is answered exactly as an unknown one, 404,
and so is an expired one, whatever the route; a listing outside the scope is
a 403.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api import cursor, downloads
from chalicelib.api.tokens import allows, allows_mail, check_bearer, scope_key
from chalicelib.config import ReadToken
from chalicelib.errors import BadRequestError, ForbiddenError, NotFoundError
from chalicelib.storage import schema
from chalicelib.web import answer
from chalicelib.wiring import services

DEFAULT_PAGE = 20
MAX_PAGE = 100
_ID = re.compile(r"[a-z2-7]{26}")
# ASCII digits only: str.isdigit() takes "²", which int() refuses.
_LIMIT = re.compile(r"[0-9]{1,3}")
_INDEX = re.compile(r"[0-9]{1,6}")

_MAILBOXES = "mailboxes"

blueprint = Blueprint(__name__)


def _token() -> ReadToken:
    return check_bearer(services.settings().read_tokens, blueprint.current_request.headers.get("authorization"))


def _visible(token: ReadToken, mail_id: str) -> dict[str, Any]:
    """The stored mail, if the token may see it; 404 for an unknown, expired or out-of-scope one alike."""
    if not _ID.fullmatch(mail_id):
        raise NotFoundError("no mail with that id")
    document = services.store().document(mail_id)
    if not allows_mail(token, document):
        raise NotFoundError("no mail with that id")
    return document


def _checked(token: ReadToken, mail_id: str) -> str:
    """The id, once the token may see it; a scoped token's reads of the bytes cost one read of the mail more."""
    if token.scope is not None:
        _visible(token, mail_id)
    elif not _ID.fullmatch(mail_id):
        raise NotFoundError("no mail with that id")
    return mail_id


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequestError(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(text)


def _mailbox(token: ReadToken, to: str | None) -> str | None:
    """The mailbox to list, None for all mail, as the token's scope allows."""
    if to is None:
        if token.scope is not None:
            raise ForbiddenError("this token lists only the mailboxes of its scope: name one with ?to=")
        return None
    mailbox = to.strip().lower()
    if not mailbox:
        raise BadRequestError("to must name an address")
    if not allows(token, mailbox):
        raise ForbiddenError("that mailbox is outside this token's scope")
    return mailbox


def _status(text: str | None) -> str | None:
    if text is None:
        return None
    if text not in schema.LISTED_STATUSES:
        raise BadRequestError(f"status must be one of {', '.join(schema.LISTED_STATUSES)}")
    return text


def _response(found: downloads.Download) -> Response:
    return Response(body=found.body, status_code=found.status, headers=dict(found.headers))


@blueprint.route("/mails", methods=["GET"])
def list_mails() -> Response:
    def read() -> Response:
        token = _token()
        query: dict[str, str] = dict(blueprint.current_request.query_params or {})
        mailbox = _mailbox(token, query.get("to"))
        limit = _limit(query.get("limit"))
        status = _status(query.get("status"))
        secret = services.settings().cursor_secret()
        # A cursor serves the listing it was issued for: this mailbox, this status (or none), and this token's scope.
        listing = f"{scope_key(token)}\n{schema.box(mailbox)}"
        fields = schema.INDEX_KEY
        if status is not None:
            # Written unlike any mailbox listing's (JSON, not lines): no `to` can make the two alike.
            listing, fields = json.dumps([schema.STATUS_INDEX, listing, status]), schema.STATUS_INDEX_KEY
        after = cursor.decode(secret, listing, query["cursor"], fields) if query.get("cursor") else None
        store = services.store()
        page = store.list_mails(mailbox, limit, after) if status is None else store.list_status(
            status, mailbox, limit, after
        )
        next_cursor = cursor.encode(secret, listing, page.last, fields) if page.last else None
        # A status listing's mail is in that status, as far as its index knows; any other listing reads them.
        summaries = _with_status(page.summaries) if status is None else [
            {**summary, "status": status} for summary in page.summaries]
        return Response(body={"mails": summaries, "cursor": next_cursor}, status_code=200)

    return answer("GET /mails", read)


def _with_status(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each summary with its mail's handoff status (null when untracked), read at once for the page."""
    statuses = services.store().statuses([summary["id"] for summary in summaries]) if summaries else {}
    return [{**summary, "status": statuses.get(summary["id"])} for summary in summaries]


@blueprint.route("/mailboxes", methods=["GET"])
def list_mailboxes() -> Response:
    def read() -> Response:
        token = _token()
        query: dict[str, str] = dict(blueprint.current_request.query_params or {})
        limit = _limit(query.get("limit"))
        secret = services.settings().cursor_secret()
        listing = f"{scope_key(token)}\n{_MAILBOXES}"
        # A mailbox cursor holds the last address of its page.
        fields = (schema.ORDER,)
        after = cursor.decode(secret, listing, query["cursor"], fields)[schema.ORDER] if query.get("cursor") else None
        page = services.store().list_mailboxes(limit, after, lambda address: allows(token, address))
        next_cursor = cursor.encode(secret, listing, {schema.ORDER: page.last}, fields) if page.last else None
        return Response(
            body={"mailboxes": [{"address": address} for address in page.addresses], "cursor": next_cursor},
            status_code=200,
        )

    return answer("GET /mailboxes", read)


@blueprint.route("/mails/{mail_id}", methods=["GET"])
def get_mail(mail_id: str) -> Response:
    def read() -> Response:
        return Response(body=_visible(_token(), mail_id), status_code=200)

    return answer("GET /mails/{id}", read)


@blueprint.route("/mails/{mail_id}/raw", methods=["GET"])
def get_raw(mail_id: str) -> Response:
    def read() -> Response:
        store = services.store()
        checked = _checked(_token(), mail_id)
        return _response(downloads.original(store, store.raw(checked), checked, blueprint.current_app.api.binary_types))

    return answer("GET /mails/{id}/raw", read)


@blueprint.route("/mails/{mail_id}/eml", methods=["GET"])
def get_eml(mail_id: str) -> Response:
    def read() -> Response:
        document = _visible(_token(), mail_id)
        message = services.content().raw_message(document)
        return _response(downloads.message(services.store(), mail_id, message, blueprint.current_app.api.binary_types))

    return answer("GET /mails/{id}/eml", read)


@blueprint.route("/mails/{mail_id}/attachments/{index}", methods=["GET"])
def get_attachment(mail_id: str, index: str) -> Response:
    def read() -> Response:
        store = services.store()
        checked = _checked(_token(), mail_id)
        if not _INDEX.fullmatch(index):
            raise NotFoundError("no attachment with that index")
        ref, entry = store.attachment(checked, int(index))
        return _response(downloads.attachment(store, ref, entry, blueprint.current_app.api.binary_types))

    return answer("GET /mails/{id}/attachments/{index}", read)


@blueprint.route("/mails/{mail_id}/retry", methods=["POST"])
def retry_mail(mail_id: str) -> Response:
    def retry() -> Response:
        _visible(_token(), mail_id)  # an expired mail is gone for this route too
        services.handoff().retry(mail_id)
        return Response(body={"id": mail_id, "status": "pending"}, status_code=202)

    return answer("POST /mails/{id}/retry", retry)
