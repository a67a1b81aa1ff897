"""Blueprint: GET /console (the page, its script and style), GET /console/config, POST /console/compose.

All of it is a 404 unless the stage says CONSOLE=on, and compose unless it
also says CONSOLE_COMPOSE=on (``.chalice/config.json``: local and dev). The
page is static and public, as a login page is; every mail it shows comes from
the read API with the read token the user types in.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from chalice.app import Blueprint, Response

from chalicelib import logs
from chalicelib.api.tokens import allows, check_bearer
from chalicelib.errors import BadRequestError, ForbiddenError, NotFoundError, PayloadTooLargeError
from chalicelib.web import answer
from chalicelib.wiring import services

STATIC = Path(__file__).resolve().parent / "static"
_ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
# The console's own answers. Scripts only from itself, none inline; styles may be
# inline because the mail's HTML, in a srcdoc frame, inherits this policy and
# brings its own; images from anywhere only so that "load remote images" can
# work in that frame, whose own policy allows none until then. No one may frame
# the console, and nothing it loads tells anyone where from.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: http: https:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS: dict[str, str | list[str]] = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-cache",
}

blueprint = Blueprint(__name__)


@cache
def _asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _enabled() -> None:
    if not services.settings().console:
        raise NotFoundError("the console is off on this stage (CONSOLE=on turns it on)")


def _static(name: str) -> Response:
    def serve() -> Response:
        _enabled()
        return Response(body=_asset(name), status_code=200, headers={**HEADERS, "Content-Type": _ASSETS[name]})

    return answer(f"GET /console/{name}", serve)


@blueprint.route("/console", methods=["GET"])
def console_page() -> Response:
    return _static("index.html")


@blueprint.route("/console/console.js", methods=["GET"])
def console_script() -> Response:
    return _static("console.js")


@blueprint.route("/console/console.css", methods=["GET"])
def console_style() -> Response:
    return _static("console.css")


@blueprint.route("/console/config", methods=["GET"])
def console_config() -> Response:
    def read() -> Response:
        _enabled()
        settings = services.settings()
        check_bearer(settings.read_tokens, blueprint.current_request.headers.get("authorization"))
        return Response(body={"compose": settings.console_compose}, status_code=200, headers=HEADERS)

    return answer("GET /console/config", read)


@blueprint.route("/console/compose", methods=["POST"], content_types=["application/json"])
def console_compose() -> Response:
    """A mail made in the browser, posted through the webhook's own steps as SendGrid's raw mode posts it.

    Who may: a holder of a read token, on a stage with CONSOLE_COMPOSE=on, and a
    scoped token only to addresses of its scope. That is more than reading: the
    mail reaches the handlers, with the verdicts the poster writes (SPF and DKIM
    pass), so it is for local and dev stages only (docs/console.md).
    """

    def post() -> Response:
        _enabled()
        settings = services.settings()
        if not settings.console_compose:
            raise NotFoundError("composing is off on this stage (CONSOLE_COMPOSE=on turns it on)")
        token = check_bearer(settings.read_tokens, blueprint.current_request.headers.get("authorization"))
        body = blueprint.current_request.raw_body
        if len(body) > settings.max_body_bytes:
            raise PayloadTooLargeError(f"request body exceeds {settings.max_body_bytes} bytes")
        try:
            form = json.loads(body)
        except ValueError:
            raise BadRequestError("the form must be JSON") from None
        # Loaded with the first composed mail: the email package's policy and header registry are not every
        # cold start's to pay (tests/unit/test_cold_start.py).
        from chalicelib.console.compose import compose  # noqa: PLC0415

        composed = compose(form)
        if not all(allows(token, address) for address in composed.recipients):
            raise ForbiddenError("a recipient is outside this token's scope")
        outcome = services.conductor().post(composed.message, composed.recipients)
        logs.line(route="POST /console/compose", status=200, id=outcome.id, attachments=outcome.attachments)
        return Response(body={"id": outcome.id, "duplicate": outcome.duplicate}, status_code=200, headers=HEADERS)

    return answer("POST /console/compose", post)
