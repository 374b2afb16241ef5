"""The scrubber every output goes through: which values are secrets, and what is left of them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import escape
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmgate.secrets import (
    HEAD_LENGTH,
    MIN_SECRET_LENGTH,
    REDACTED,
    TAIL_LENGTH,
    Scrubber,
    configured_secrets,
)

# Credential-shaped test values, assembled at run time so repository secret scanners stay quiet.
KEY = "-".join(("sk", "proj", "Zq81FAKEunitKEY0x7Hc2LmWVb9Tn4QsKr"))
ORG = "-".join(("org", "FAKEunitORG8Hs2Kd7Lq"))
TOKEN = "".join(("p@ss/w0rd+", "FAKE&unit", '"token"=='))  # every escapable character a writer escapes
SCRUBBER = Scrubber((KEY, ORG, TOKEN))


def leftovers(text: str, *secrets: str) -> list[str]:
    """Parts of `secrets` still recognisable in `text`: the value, its head and its tail."""
    parts = {part for secret in secrets for part in (secret, secret[:HEAD_LENGTH], secret[-TAIL_LENGTH:])}
    return sorted(part for part in parts if part in text)


def test_configured_secrets_are_the_sdk_azure_and_key_or_token_variables() -> None:
    environ = {
        "OPENAI_API_KEY": "k-openai-value",
        "OPENAI_ORG_ID": "org-value-1",
        "OPENAI_PROJECT_ID": "proj-value-1",
        "AZURE_OPENAI_API_KEY": "k-azure-value",
        "ANTHROPIC_API_KEY": "k-anthropic-value",
        "GITHUB_TOKEN": "gh-token-value",
        "MY_PROXY_SECRET": "proxy-secret-value",
        "HOME": "/home/someone",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "PATH": "/usr/bin",
    }
    assert set(configured_secrets(environ, extra=("client-key-value", None))) == {
        "k-openai-value",
        "org-value-1",
        "proj-value-1",
        "k-azure-value",
        "k-anthropic-value",
        "gh-token-value",
        "proxy-secret-value",
        "client-key-value",
    }


def test_secrets_shorter_than_the_minimum_are_not_scrubbed_by_value() -> None:
    short = "x" * (MIN_SECRET_LENGTH - 1)
    long_enough = "y" * MIN_SECRET_LENGTH
    scrubber = Scrubber((short, long_enough))
    assert scrubber.secrets == (long_enough,)
    assert scrubber.text(f"{short} {long_enough}") == f"{short} {REDACTED}"


def test_the_repr_never_shows_a_secret() -> None:
    assert KEY not in repr(SCRUBBER)
    assert ORG not in repr(SCRUBBER)


@pytest.mark.parametrize(
    "encode",
    [
        lambda secret: secret,
        lambda secret: json.dumps(secret),
        lambda secret: json.dumps(secret).replace("/", "\\/"),  # PHP and others escape slashes
        lambda secret: json.dumps(secret).replace("-", "\\u002D").replace("+", "\\u002b"),
        lambda secret: quote(secret, safe=""),  # a URL query
        lambda secret: quote(secret, safe="").lower(),
        lambda secret: escape(secret),  # HTML and XML attributes
        lambda secret: "".join(f"&#{ord(char)};" if not char.isalnum() else char for char in secret),
        lambda secret: "".join(f"&#x{ord(char):X};" if not char.isalnum() else char for char in secret),
    ],
    ids=["plain", "json", "json-slash", "json-unicode", "url", "url-lower", "html", "html-dec", "html-hex"],
)
def test_a_secret_is_scrubbed_in_every_escaping_a_writer_gives_it(encode: Callable[[str], str]) -> None:
    for secret in (KEY, ORG, TOKEN):
        text = f"before {encode(secret)} after"
        scrubbed = SCRUBBER.text(text)
        assert scrubbed.startswith("before ")
        assert scrubbed.endswith(" after")
        assert REDACTED in scrubbed
        assert leftovers(scrubbed, secret) == [], (secret, text, scrubbed)


@pytest.mark.parametrize(
    "text",
    [
        f"Incorrect API key provided: sk-proj-{'*' * 20}{KEY[-4:]}.",  # OpenAI's own mask
        f"Incorrect API key provided: sk-proj-****{KEY[-8:]}.",
        f"key ending in ...{KEY[-8:]}",
        f"key ending in {KEY[-16:]}",  # what the old scrubber left
        f"cut short: {KEY[: HEAD_LENGTH + 3]}...",  # an excerpt cut in the middle of the key
        f"org {ORG[:HEAD_LENGTH]}",
    ],
)
def test_no_recognisable_part_of_a_key_survives(text: str) -> None:
    scrubbed = SCRUBBER.text(text)
    assert REDACTED in scrubbed
    assert leftovers(scrubbed, KEY, ORG) == []
    assert "*" not in scrubbed


@pytest.mark.parametrize(
    "shaped",
    [
        "-".join(("sk", "proj", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4")),
        "-".join(("sk", "ant", "api03", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4")),
        "-".join(("sk", "svcacct", "A1b2C3d4E5f6G7h8I9j0")),
        "-".join(("org", "A1b2C3d4E5f6G7h8I9j0K1l2")),
        "_".join(("proj", "A1b2C3d4E5f6G7h8I9j0K1l2")),
        "".join(("AIza", "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6")),
        "_".join(("ghp", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8")),
        "_".join(("hf", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8")),
        " ".join(("Bearer", "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo")),
    ],
)
def test_credential_shaped_strings_are_redacted_whole_without_being_configured(shaped: str) -> None:
    assert Scrubber().text(f"use ({shaped}) here") == f"use ({REDACTED}) here"


@pytest.mark.parametrize(
    "text",
    [
        # Split at run time: the repository's secret scanners read "sk-..." inside words as keys.
        "".join(("tas", "k-extraction-for-acme-invoices")),
        "".join(("ris", "k-assessment-of-the-quarterly-report")),
        "the georg-friedrich-handel-orchestra",
        "Bearer of bad news",
        "latency 123456789.0 ms",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert SCRUBBER.text(text) == text


def test_an_all_digit_secret_part_does_not_break_numbers_in_a_json_report() -> None:
    numeric = Scrubber(("account-" + "9" * 16,))
    report = json.dumps({"cost": 0.99999999123, "latency_ms": 999999999})
    assert json.loads(numeric.text(report)) == json.loads(report)


def test_a_secret_holding_another_is_replaced_whole() -> None:
    inner = "innerFAKE123"
    assert Scrubber((inner, f"outer-{inner}-tail")).text(f"x outer-{inner}-tail y") == f"x {REDACTED} y"


def test_bytes_are_scrubbed_as_utf8_and_other_bytes_pass_through() -> None:
    data = "café ".encode() + KEY.encode() + b" \xff\xfe"
    assert SCRUBBER.bytes(data) == "café ".encode() + REDACTED.encode() + b" \xff\xfe"
    clean = b"no secret \xff here"
    assert SCRUBBER.bytes(clean) is clean


def test_structures_are_scrubbed_keys_and_values() -> None:
    data = {"headers": [(KEY, 1)], ORG: {"nested": [f"a {TOKEN}", 2.5, None, b"b " + KEY.encode()]}}
    assert SCRUBBER.value(data) == {
        "headers": [(REDACTED, 1)],
        REDACTED: {"nested": [f"a {REDACTED}", 2.5, None, b"b " + REDACTED.encode()]},
    }


def test_extra_secrets_add_to_the_configured_ones() -> None:
    more = Scrubber((ORG,)).with_secrets([KEY, None, ""])
    assert more.text(f"{KEY} {ORG}") == f"{REDACTED} {REDACTED}"


PIECES = st.sampled_from([*'ab -_.*"\\/%&#;', KEY, ORG, TOKEN, KEY[-TAIL_LENGTH:], KEY[:HEAD_LENGTH]])


@given(st.lists(PIECES, max_size=12).map("".join))
def test_scrubbing_is_idempotent_and_leaves_nothing_recognisable(text: str) -> None:
    once = SCRUBBER.text(text)
    assert SCRUBBER.text(once) == once
    assert leftovers(once, KEY, ORG) == []
    assert TOKEN not in once
    assert not re.search(r"sk-proj-\w{4}", once)
