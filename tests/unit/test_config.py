"""Settings from the environment and from SSM."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.config import Settings, load_settings, parse_credentials, ssm_reader
from chalicelib.errors import NotConfiguredError, StorageUnavailableError

BASE = {"MAILS_TABLE": "t", "MAILS_BUCKET": "b"}


def test_pairs_and_tokens_are_parsed_from_the_environment() -> None:
    settings = load_settings(
        {**BASE, "MAIL_CREDENTIALS": " k1:s1 , k2:s:2,", "READ_TOKENS": "a, b", "MAX_BODY_BYTES": "1000"}
    )
    assert settings == Settings(
        table="t", bucket="b", mail_credentials=(("k1", "s1"), ("k2", "s:2")),
        read_tokens=("a", "b"), max_body_bytes=1000,
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
    assert settings.read_tokens == ("t1", "t2")


def test_an_unreadable_parameter_is_a_storage_fault_so_sendgrid_retries(aws: str) -> None:
    with pytest.raises(StorageUnavailableError) as caught:
        load_settings({**BASE, "MAIL_CREDENTIALS_PARAMETER": "/missing"}, ssm_reader(boto3.client("ssm")))
    assert caught.value.status == 503
