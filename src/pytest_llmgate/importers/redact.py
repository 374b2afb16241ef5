"""Redaction of imported traffic: secrets and personal data replaced by consistent placeholders.

Production traffic is about to become files in a repository, read by every reviewer and kept in
its history forever, so redaction is on by default and covers requests and responses alike. One
`Redactor` serves a whole import: the same email becomes the same placeholder (`[EMAIL_1]`) in
every message, reply and tool-call argument, so a case still reads as a conversation and an
extraction check still compares like with like.

Credentials are replaced even with `--no-redact`: that switch is about personal data a team may
legitimately want to keep in a private repository; a key in a file is never legitimate.
Validators cut false positives where the shape alone says little: card numbers must pass the
Luhn check, IBANs the ISO 7064 mod-97 check, IP addresses must parse.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Credential shapes, replaced whole: OpenAI/Anthropic keys (and the masked form error messages
# print), org and project ids, Google, GitHub, Hugging Face, Slack and AWS keys, JWTs and bearer
# tokens. The look-behind keeps words such as "task-extraction" (which contains "sk-") intact.
SECRET_SHAPES = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-[A-Za-z0-9_-]*\*{3,}[A-Za-z0-9_*-]*"
    r"|sk-[A-Za-z0-9_-]{16,}"
    r"|org-[A-Za-z0-9]{16,}"
    r"|proj_[A-Za-z0-9]{16,}"
    r"|AIza[A-Za-z0-9_-]{30,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r")"
    r"|\b[Bb]earer [A-Za-z0-9._~+/-]{16,}=*"
)
# `api_key: abc123...`, `password=hunter22`: the value after a credential's name.
NAMED_SECRET = re.compile(
    r"(?i)\b(?:api[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|client[_-]?secret"
    r"|secret|password|passwd)\b[\"']?\s*[:=]\s*[\"']?(?P<value>[^\s\"',;}\[][^\s\"',;}]{5,})"
)
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
PHONE = re.compile(
    r"(?<![\w+])\+\d[\d ().-]{6,}\d(?!\w)"  # international: +49 30 1234567, +1 (415) 555-0100
    r"|(?<![\w(])(?<!\d[ ./-])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w)"  # North American: (415) 555-0100
    r"|(?<!\w)(?<!\d[ ./-])0\d{2,4}[ /-]\d{3,4}[ -]?\d{2,5}(?!\w)"  # national with a trunk 0: 030 1234 5678
)
IPV4 = re.compile(
    r"(?<!\d)(?<!\d\.)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\d|\.\d)"
)
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")

# Environment variables whose values are secrets wherever they appear (a key pasted into a prompt).
SECRET_ENV_SUFFIXES = ("_API_KEY", "_ACCESS_KEY", "_SECRET_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
SECRET_ENV_NAMES = frozenset({"OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID"})
MIN_SECRET_LENGTH = 8

KINDS = ("secret", "email", "iban", "card", "phone", "ip", "custom")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries (rules out order numbers, timestamps)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616 check: country and check digits moved to the end, letters as numbers, mod 97 == 1."""
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _card(match: re.Match[str]) -> str | None:
    digits = re.sub(r"\D", "", match.group(0))
    return match.group(0) if 13 <= len(digits) <= 19 and luhn_valid(digits) else None


def _iban(match: re.Match[str]) -> str | None:
    return match.group(0) if iban_valid(match.group(0)) else None


def _phone(match: re.Match[str]) -> str | None:
    digits = re.sub(r"\D", "", match.group(0))
    return match.group(0) if 8 <= len(digits) <= 15 else None


def _ipv6(match: re.Match[str]) -> str | None:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return text


def _whole(match: re.Match[str]) -> str | None:
    return match.group(0)


def _named_value(match: re.Match[str]) -> str | None:
    return match.group("value")


Validator = Callable[[re.Match[str]], "str | None"]


def environment_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of this environment's credential variables, long enough to replace safely."""
    env = os.environ if environ is None else environ
    return tuple(
        sorted(
            {
                value
                for name, value in env.items()
                if (name.upper() in SECRET_ENV_NAMES or name.upper().endswith(SECRET_ENV_SUFFIXES))
                and len(value) >= MIN_SECRET_LENGTH
            },
            key=len,
            reverse=True,
        )
    )


@dataclass
class Redactor:
    """Replaces secrets (always) and personal data (unless `personal_data` is False) in text and JSON.

    `counts[kind]` is how many distinct values of that kind were replaced, `occurrences[kind]` how
    many times; placeholders are numbered per kind in order of first appearance.
    """

    personal_data: bool = True
    patterns: tuple[re.Pattern[str], ...] = ()
    secrets: tuple[str, ...] = ()
    placeholders: dict[tuple[str, str], str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    occurrences: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_options(
        cls, *, personal_data: bool, patterns: Iterable[str] = (), environ: Mapping[str, str] | None = None
    ) -> Redactor:
        return cls(
            personal_data=personal_data,
            patterns=tuple(re.compile(pattern) for pattern in patterns),
            secrets=environment_secrets(environ),
        )

    def _rules(self) -> list[tuple[str, re.Pattern[str], Validator]]:
        rules: list[tuple[str, re.Pattern[str], Validator]] = [
            ("secret", SECRET_SHAPES, _whole),
            ("secret", NAMED_SECRET, _named_value),
        ]
        rules += [("custom", pattern, _whole) for pattern in self.patterns]
        if self.personal_data:
            rules += [
                ("email", EMAIL, _whole),
                ("iban", IBAN, _iban),
                ("card", CARD, _card),
                ("phone", PHONE, _phone),
                ("ip", IPV4, _whole),
                ("ip", IPV6, _ipv6),
            ]
        return rules

    def placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self.placeholders:
            self.counts[kind] += 1
            self.placeholders[key] = f"[{kind.upper()}_{self.counts[kind]}]"
        self.occurrences[kind] += 1
        return self.placeholders[key]

    def text(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, self.placeholder("secret", secret))
        for kind, pattern, validate in self._rules():
            text = self._apply(text, kind, pattern, validate)
        return text

    def _apply(self, text: str, kind: str, pattern: re.Pattern[str], validate: Validator) -> str:
        pieces: list[str] = []
        last = 0
        for match in pattern.finditer(text):
            value = validate(match)
            if not value:
                continue
            start = match.start() + match.group(0).index(value)
            pieces.append(text[last:start])
            pieces.append(self.placeholder(kind, value))
            last = start + len(value)
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    def value(self, data: Any) -> Any:
        """`data` (JSON-like) with every string redacted; keys are left alone."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, Mapping):
            return {key: self.value(item) for key, item in data.items()}
        if isinstance(data, list | tuple):
            return [self.value(item) for item in data]
        return data

    def summary(self) -> str:
        """`redacted: 2 email (5 times), 1 secret`, or `redacted: nothing`."""
        parts = [
            f"{self.counts[kind]} {kind}"
            + (f" ({self.occurrences[kind]} times)" if self.occurrences[kind] != self.counts[kind] else "")
            for kind in KINDS
            if self.counts[kind]
        ]
        switch = "" if self.personal_data else " (personal data kept: --no-redact)"
        return "redacted: " + (", ".join(parts) if parts else "nothing") + switch


def find_secrets(text: str) -> list[str]:
    """Credential-shaped strings left in `text`: the last check before anything is written."""
    return [match.group(0) for match in SECRET_SHAPES.finditer(text)]
