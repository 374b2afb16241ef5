"""Redaction of imported traffic: what is replaced, consistently, and what is left alone."""

from __future__ import annotations

import pytest

from pytest_llmgate.importers.redact import Redactor, find_secrets, iban_valid, luhn_valid

# Assembled at run time so that secret scanners of the repository do not flag these fakes.
FAKE_KEY = "-".join(("sk", "proj", "FAKEKEYllmgate0123456789abcdef"))


def test_the_same_value_gets_the_same_placeholder_everywhere() -> None:
    redactor = Redactor()
    request = {"messages": [{"role": "user", "content": "Mail jane@example.com or bob@example.org"}]}
    response = {"choices": [{"message": {"content": "I wrote to jane@example.com."}}]}
    assert redactor.value(request)["messages"][0]["content"] == "Mail [EMAIL_1] or [EMAIL_2]"
    assert redactor.value(response)["choices"][0]["message"]["content"] == "I wrote to [EMAIL_1]."
    assert redactor.counts["email"] == 2
    assert redactor.occurrences["email"] == 3
    assert redactor.summary() == "redacted: 2 email (3 times)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 ok", "card [CARD_1] ok"),
        ("card 4111-1111-1111-1111", "card [CARD_1]"),
        ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [IBAN_1]."),
        ("IBAN GB82WEST12345698765432", "IBAN [IBAN_1]"),
        ("call +49 30 1234 5678 now", "call [PHONE_1] now"),
        ("call (415) 555-0100", "call [PHONE_1]"),
        ("from 192.168.10.24.", "from [IP_1]."),
        ("host fe80::1 down", "host [IP_1] down"),
        ("key " + FAKE_KEY, "key [SECRET_1]"),
        ("Authorization: " + " ".join(("Bearer", "abcdefghijklmnop1234")), "Authorization: [SECRET_1]"),
        ("password=hunter2hunter2", "password=[SECRET_1]"),
    ],
)
def test_each_kind_is_replaced(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112",  # fails the Luhn check: an order number, not a card
        "IBAN DE89 3704 0044 0532 0130 01",  # fails mod 97
        "total 1,234.50 EUR on 2024-03-05 at 12:30:45",
        "version 1.2.3.4.5 and 300.1.1.1",
        "".join(("tas", "k-extraction-for-acme")),  # split: secret scanners read it as a key
    ],
)
def test_lookalikes_are_left_alone(text: str) -> None:
    redactor = Redactor()
    assert redactor.text(text) == text
    assert redactor.summary() == "redacted: nothing"


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_valid("DE00 3704 0044 0532 0130 00")


def test_no_redact_keeps_personal_data_but_never_credentials() -> None:
    redactor = Redactor.from_options(personal_data=False, environ={})
    text = f"jane@example.com +49 30 1234 5678 {FAKE_KEY}"
    assert redactor.text(text) == "jane@example.com +49 30 1234 5678 [SECRET_1]"
    assert "personal data kept" in redactor.summary()


def test_extra_patterns_and_environment_secrets() -> None:
    redactor = Redactor.from_options(
        personal_data=True, patterns=[r"CUST-\d{6}"], environ={"ACME_API_KEY": "acme-plain-secret-value"}
    )
    redacted = redactor.text("customer CUST-123456 used acme-plain-secret-value")
    assert redacted == "customer [CUSTOM_1] used [SECRET_1]"


def test_find_secrets_is_the_last_check() -> None:
    assert find_secrets(f"x {FAKE_KEY} y") == [FAKE_KEY]
    assert find_secrets("[SECRET_1] and jane@example.com") == []
