"""Settings from the environment and from SSM."""

from __future__ import annotations

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import ReadToken, Settings, load_settings, parse_credentials, parse_tokens, ssm_reader
from chalicelib.errors import NotConfiguredError, StorageUnavailableError
from tests.support.examples import examples

BASE = {"MAILS_TABLE": "t", "MAILS_BUCKET": "b"}


def test_pairs_and_tokens_are_parsed_from_the_environment() -> None:
    settings = load_settings(
        {**BASE, "MAIL_CREDENTIALS": " k1:s1 , k2:s:2,", "READ_TOKENS": "a, b", "MAX_BODY_BYTES": "1000"}
    )
    assert settings == Settings(
        table="t", bucket="b", mail_credentials=(("k1", "s1"), ("k2", "s:2")),
        read_tokens=(ReadToken("a"), ReadToken("b")), max_body_bytes=1000,
    )


def test_repr_hides_every_secret() -> None:
    settings = load_settings({**BASE, "MAIL_CREDENTIALS": "k1:hunter2", "READ_TOKENS": "tok3n"})
    assert "hunter2" not in repr(settings)
    assert "tok3n" not in repr(settings)
    assert "1 pairs" in repr(settings)


@pytest.mark.parametrize("text", ["nocolon", ":secret", "key:"])
def test_a_broken_pair_is_a_configuration_error(text: str) -> None:
    with pytest.raises(NotConfiguredError):
        parse_credentials(text)


def test_missing_table_or_bucket_is_a_configuration_error() -> None:
    with pytest.raises(NotConfiguredError):
        load_settings({"MAILS_TABLE": "t"})


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_bad_numbers_are_configuration_errors(value: str) -> None:
    with pytest.raises(NotConfiguredError):
        load_settings({**BASE, "MAX_BODY_BYTES": value})


def test_secrets_are_read_from_ssm_securestrings(aws: str) -> None:
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/mail/creds", Value="k:from-ssm", Type="SecureString")
    ssm.put_parameter(Name="/mail/tokens", Value="t1,t2", Type="SecureString")
    settings = load_settings(
        {**BASE, "MAIL_CREDENTIALS_PARAMETER": "/mail/creds", "READ_TOKENS_PARAMETER": "/mail/tokens",
         "MAIL_CREDENTIALS": "ignored:when-parameter-set"},
        ssm_reader(ssm),
    )
    assert settings.mail_credentials == (("k", "from-ssm"),)
    assert settings.read_tokens == (ReadToken("t1"), ReadToken("t2"))


def test_an_unreadable_parameter_is_a_storage_fault_so_sendgrid_retries(aws: str) -> None:
    with pytest.raises(StorageUnavailableError) as caught:
        load_settings({**BASE, "MAIL_CREDENTIALS_PARAMETER": "/missing"}, ssm_reader(boto3.client("ssm")))
    assert caught.value.status == 503


def test_a_token_may_be_scoped_to_address_patterns() -> None:
    assert parse_tokens("all-of-it, help-desk=support@Example.com  *@HELP.example.com,t2=a@b.example") == (
        ReadToken("all-of-it"),
        ReadToken("help-desk", ("support@example.com", "*@help.example.com")),
        ReadToken("t2", ("a@b.example",)),
    )


@pytest.mark.parametrize("text", ["t=", "t=  ", "=a@b.example", " = "])
def test_a_token_without_its_patterns_or_a_pattern_without_its_token_is_a_configuration_error(text: str) -> None:
    with pytest.raises(NotConfiguredError):
        parse_tokens(text)


def test_a_scope_is_shown_and_its_token_is_not() -> None:
    assert repr(ReadToken("s3cr3t", ("*@example.com",))) == "ReadToken(<token>, scope=('*@example.com',))"


@settings(max_examples=examples(300), deadline=None)
@given(st.text(max_size=80))
def test_no_text_makes_the_token_parser_raise_anything_but_a_configuration_error(text: str) -> None:
    try:
        tokens = parse_tokens(text)
    except NotConfiguredError:
        return
    for entry in tokens:
        assert entry.token and "," not in entry.token and "=" not in entry.token
        assert entry.scope is None or (entry.scope and all(p == p.lower() and p.split() == [p] for p in entry.scope))


def test_mailgun_keys_come_from_ssm_several_at_once_and_stay_out_of_repr(aws: str) -> None:
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/mail/mailgun", Value="key-old, key-new\n", Type="SecureString")
    settings = load_settings(
        {**BASE, "MAILGUN_SIGNING_KEY_PARAMETER": "/mail/mailgun", "MAILGUN_SIGNATURE_TOLERANCE": "300"},
        ssm_reader(ssm),
    )
    assert (settings.mailgun_signing_keys, settings.mailgun_tolerance) == (("key-old", "key-new"), 300)
    assert "key-old" not in repr(settings) and "mailgun_signing_keys=<2 keys>" in repr(settings)


def test_postmark_sources_are_addresses_or_networks_and_junk_is_a_configuration_error() -> None:
    settings = load_settings({**BASE, "POSTMARK_IPS": "3.134.147.250, 50.31.156.0/24,2001:db8::/32"})
    assert [str(network) for network in settings.postmark_networks] == [
        "3.134.147.250/32", "50.31.156.0/24", "2001:db8::/32"
    ]
    assert load_settings(BASE).postmark_networks == ()
    with pytest.raises(NotConfiguredError):
        load_settings({**BASE, "POSTMARK_IPS": "postmark.example"})


@pytest.mark.parametrize(
    ("console", "compose", "expected"),
    [("", "", (False, False)), ("on", "", (True, False)), ("ON", "on", (True, True)), ("off", "on", (False, False))],
)
def test_the_console_is_off_unless_the_stage_says_on_and_compose_needs_both(
    console: str, compose: str, expected: tuple[bool, bool]
) -> None:
    settings = load_settings({**BASE, "CONSOLE": console, "CONSOLE_COMPOSE": compose})
    assert (settings.console, settings.console_compose) == expected


@pytest.mark.parametrize("value", ["yes", "1", "true"])
def test_a_console_switch_other_than_on_or_off_is_a_configuration_error(value: str) -> None:
    with pytest.raises(NotConfiguredError, match="CONSOLE must be on or off"):
        load_settings({**BASE, "CONSOLE": value})
