"""The SPF result and spam score a provider writes in its headers: junk becomes None, never an error."""

from __future__ import annotations

import pytest

from chalicelib.ingress.verdicts import from_headers, spam_score, spf_result


@pytest.mark.parametrize(
    ("value", "result"),
    [("Pass (sender SPF authorized) identity=mailfrom", "pass"), ("SoftFail", "softfail"), ("  none", "none"),
     ("passed", None), ("", None), (None, None)],
)
def test_spf_is_one_of_rfc_7208s_results_or_none(value: str | None, result: str | None) -> None:
    assert spf_result(value) == result


@pytest.mark.parametrize(("value", "score"), [("-0.1", -0.1), ("5", 5.0), ("nan", None), ("inf", None),
                                              ("high", None), (None, None)])
def test_a_spam_score_is_a_finite_number_or_none(value: str | None, score: float | None) -> None:
    assert spam_score(value) == score


def test_the_first_of_each_header_counts_whatever_its_case() -> None:
    headers = [("X-Mailgun-Spf", "Fail"), ("x-mailgun-spf", "Pass"), ("X-Mailgun-Sscore", "0.3")]
    assert from_headers(headers, "x-mailgun-spf", "x-mailgun-sscore") == ("fail", 0.3)
    assert from_headers([], "x-mailgun-spf", "x-mailgun-sscore") == (None, None)
