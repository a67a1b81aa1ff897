"""Every failure the service knows, under one root; each class carries its HTTP status (``web.py`` answers with it).

Messages are written for the caller and the log alike, so they never carry a
secret, a token, a signature or mail content.
"""

from __future__ import annotations


class MailServiceError(Exception):
    """Root of every error this service raises on purpose."""

    status = 500

    def __init__(self, message: str, **details: str) -> None:
        super().__init__(message)
        self.message = message
        # Extra fields for the reply (such as where a rejected body was kept).
        self.details = details


class BadRequestError(MailServiceError):
    """The request can never succeed as sent; the provider must not retry it."""

    status = 400


class MalformedMailError(BadRequestError):
    """Authenticated, but the body is not a readable mail (kept aside for an operator)."""


class BadCursorError(BadRequestError):
    """A paging cursor that we did not issue, or that was altered."""


class AuthenticationError(MailServiceError):
    """Credentials, token or signature missing or wrong."""

    status = 401


class ForbiddenError(MailServiceError):
    """A read token asked for what its scope does not cover."""

    status = 403


class NotFoundError(MailServiceError):
    """No stored mail (or attachment) under that id."""

    status = 404


class PayloadTooLargeError(MailServiceError):
    """The body, or one of its counts, exceeds a configured bound."""

    status = 413


class UnsupportedMediaTypeError(MailServiceError):
    """The body is not of the ingress's media type."""

    status = 415


class NotConfiguredError(MailServiceError):
    """The service has no credentials or resources configured: fail closed, the provider retries."""

    status = 503


class StorageUnavailableError(MailServiceError):
    """S3, DynamoDB or SSM failed; the write is incomplete and a retry will redo it."""

    status = 503


class ConflictError(MailServiceError):
    """The mail is not in a state that allows the action (such as a retry of a delivered mail)."""

    status = 409
