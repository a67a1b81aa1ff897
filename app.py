"""The composition root: the Chalice app, the media types API Gateway must pass as bytes, and each area's routes.

Mail travels one way, and the folders of chalicelib say so: an ingress turns a
provider's request into a mail (``ingress/``), ``mime/`` decodes bytes,
``storage/`` makes the mail durable, ``delivery/`` hands it to a mailbox
(``mailboxes/``), and ``api/`` reads it back. docs/design/architecture.md
has the map.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, Request, Response

from chalicelib import logs
from chalicelib.api import routes as read_api
from chalicelib.console import routes as console
from chalicelib.delivery import consumer as handoff
from chalicelib.ingress.mailgun import routes as mailgun
from chalicelib.ingress.postmark import routes as postmark
from chalicelib.ingress.relay import routes as relay
from chalicelib.ingress.sendgrid import routes as sendgrid
from chalicelib.ingress.ses import consumer as ses

logs.configure()
app = Chalice(app_name=logs.LOGGER_NAME, configure_logs=False)
# Without this API Gateway hands a form over as UTF-8 text and garbles every
# other byte; chalice local and the test client never show it (a test drives
# the app with an API Gateway event).
app.api.binary_types.append("multipart/form-data")
# The commonest attachment type, and a mail's original as SES stored it, so that
# they download without a detour through S3; message/rfc822 is also what the
# relay posts, which API Gateway must pass as the bytes the MTA sent.
app.api.binary_types.extend(["application/pdf", "message/rfc822"])



@app.middleware("http")
def lambda_context(event: Request, get_response: Any) -> Response:
    """Each request's log lines carry its Lambda context (the queue functions start theirs themselves)."""
    logs.start(app.lambda_context)
    response: Response = get_response(event)
    return response


app.register_blueprint(sendgrid.blueprint)
app.register_blueprint(ses.blueprint)
app.register_blueprint(relay.blueprint)
app.register_blueprint(postmark.blueprint)
app.register_blueprint(mailgun.blueprint)
app.register_blueprint(handoff.blueprint)
app.register_blueprint(read_api.blueprint)
app.register_blueprint(console.blueprint)
