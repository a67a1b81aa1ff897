"""Ingest credentials and read tokens: every way in, every way refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.api.tokens import check_bearer
from chalicelib.config import ReadToken
from chalicelib.constant_time import matches_any
from chalicelib.errors import AuthenticationError, NotConfiguredError
from chalicelib.ingress.credentials import check_ingest, presented_credentials
from tests.support.examples import examples

PAIRS = (("sendgrid", "secret-1"), ("sendgrid", "secret-2"))


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("query", "authorization"),
    [
        ({"MailKey": "sendgrid", "MailSecret": "secret-1"}, None),
        ({"MailKey": "sendgrid", "MailSecret": "secret-2"}, None),
        (None, basic("sendgrid:secret-2")),
        ({}, "basic " + base64.b64encode(b"sendgrid:secret-1").decode()),
    ],
)
def test_any_configured_pair_is_accepted_by_query_or_basic(query, authorization) -> None:
    assert check_ingest(PAIRS, query, authorization) == "sendgrid"


@pytest.mark.parametrize(
    ("authorization", "pair"),
    [
        ("Basic  " + base64.b64encode(b"key:secret").decode(), ("key", "secret")),  # two blanks after the scheme
        (basic("key:sec:ret"), ("key", "sec:ret")),  # RFC 7617: the user-id ends at the first colon
        (basic("key:"), ("key", "")),
    ],
)
def test_basic_credentials_are_read_as_rfc_7617_writes_them(authorization: str, pair: tuple[str, str]) -> None:
    assert presented_credentials(None, authorization) == pair


def test_junk_in_a_basic_value_is_refused_not_skipped() -> None:
    valid = base64.b64encode(b"sendgrid:secret-1").decode()
    assert presented_credentials(None, f"Basic {valid[:8]}!{valid[8:]}") is None
    assert presented_credentials(None, f"Basic {valid[:8]}\n{valid[8:]}") is None


def test_a_lone_surrogate_is_compared_not_raised_on() -> None:
    assert matches_any("\udc80", ["\udc80"]) is True
    assert matches_any("\udc80", ["sendgrid\x00secret-1"]) is False


@pytest.mark.parametrize(
    ("query", "authorization", "message"),
    [
        (None, None, "credentials missing"),
        ({"MailKey": "sendgrid"}, None, "credentials missing"),
        (None, "Bearer abc", "credentials missing"),
        (None, "Basic !!!notbase64", "credentials missing"),
        (None, basic("no-colon"), "credentials missing"),
        ({"MailKey": "sendgrid", "MailSecret": "secret-3"}, None, "credentials wrong"),
        ({"MailKey": "other", "MailSecret": "secret-1"}, None, "credentials wrong"),
        ({"MailKey": "sendgrid", "MailSecret": ""}, None, "credentials wrong"),
        (None, basic("sendgrid:secret-1x"), "credentials wrong"),
        # The separator cannot be smuggled across key and secret.
        ({"MailKey": "sendgrid\x00secret-1", "MailSecret": ""}, None, "credentials wrong"),
    ],
)
def test_missing_or_wrong_credentials_are_refused(query, authorization, message) -> None:
    with pytest.raises(AuthenticationError) as caught:
        check_ingest(PAIRS, query, authorization)
    assert caught.value.message == message
    assert "secret" not in str(caught.value)


def test_no_configured_credentials_fails_closed() -> None:
    with pytest.raises(NotConfiguredError) as caught:
        check_ingest((), {"MailKey": "k", "MailSecret": "s"}, None)
    assert caught.value.message == "no ingest credentials are configured"


TOKENS = (ReadToken("t1"), ReadToken("t2", ("*@example.com",)))


def test_bearer_tokens() -> None:
    assert check_bearer(TOKENS, "Bearer t2") == TOKENS[1]
    assert check_bearer(TOKENS, "bearer  t1 ") == TOKENS[0]
    for header, message in [
        (None, "bearer token missing"),
        ("Basic dDE=", "bearer token missing"),
        ("Bearer ", "bearer token missing"),
        ("Bearer t3", "bearer token wrong"),
        ("Bearer t1t2", "bearer token wrong"),
    ]:
        with pytest.raises(AuthenticationError) as caught:
            check_bearer(TOKENS, header)
        assert caught.value.message == message
    with pytest.raises(NotConfiguredError) as caught:
        check_bearer((), "Bearer t1")
    assert caught.value.message == "no read tokens are configured"


def test_ingest_credentials_do_not_open_the_read_api() -> None:
    with pytest.raises(AuthenticationError):
        check_bearer((ReadToken("token"),), basic("sendgrid:secret-1"))
    with pytest.raises(AuthenticationError):
        check_bearer((ReadToken("token"),), "Bearer secret-1")


@settings(max_examples=examples(300), deadline=None)
@given(
    st.one_of(st.none(), st.dictionaries(st.sampled_from(["MailKey", "MailSecret", "x"]), st.text(max_size=40))),
    st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=60).map(
        lambda raw: "Basic " + base64.b64encode(raw).decode())),
)
def test_no_query_or_header_gets_in_or_raises_anything_but_a_refusal(
    query: dict[str, str] | None, authorization: str | None
) -> None:
    with pytest.raises(AuthenticationError):
        check_ingest(PAIRS, query, authorization)
    with pytest.raises(AuthenticationError):
        check_bearer((ReadToken("token-that-no-one-guesses"),), authorization)
