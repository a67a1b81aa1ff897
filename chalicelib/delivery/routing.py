"""Which handler a mail goes to: an ordered table of (name, predicate, handler), first match wins.

Predicates are plain functions of the mail, so a route can match on anything;
``recipient``, ``to_header`` and ``subject`` build the common ones from a
regular expression. A handler is a function of the mail; it raises ``Bounce``
to refuse a mail for good (no retry), any other exception to have it retried.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib.model import StoredMail

Predicate = Callable[[StoredMail], bool]
Handler = Callable[[StoredMail], None]


class Bounce(Exception):
    """A handler's refusal: the mail is recorded as bounced and not retried."""


@dataclass(frozen=True)
class Route:
    name: str
    when: Predicate
    handler: Handler


def recipient(pattern: str) -> Predicate:
    """Any envelope recipient matches the whole pattern, without regard to case."""
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda mail: any(regex.fullmatch(address) for address in mail.envelope_to)


def to_header(pattern: str) -> Predicate:
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda mail: any(regex.fullmatch(a["address"]) for a in mail.to + mail.cc)


def subject(pattern: str) -> Predicate:
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda mail: bool(mail.subject and regex.search(mail.subject))


def always(mail: StoredMail) -> bool:
    return True


def no_mailbox(mail: StoredMail) -> None:
    raise Bounce("no route matches this mail")


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)

    def route(self, mail: StoredMail) -> Route:
        for route in self.routes:
            if route.when(mail):
                return route
        return Route("no route", always, no_mailbox)
