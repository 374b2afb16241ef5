"""Which values are secrets, and the one scrubber every written byte goes through.

Cassettes, the `--llm-report` files, the GitHub step summary, JUnit XML and the terminal all
carry text that a server may have echoed: a proxy that copies the key into a response header, an
error body quoting it, a reply repeating it. Scrubbing by header name alone misses those, so every
output is scrubbed by *value* with one `Scrubber`, and a replay compares the scrubbed forms of the
recorded and the current request, so what was redacted while recording still matches.

A configured secret (see `configured_secrets`) is replaced wherever it appears, literally or in
the escaped forms a writer may give its non-alphanumeric characters (JSON `\\u002d` and `\\/`,
URL `%2D`, HTML `&#45;`). Parts of a secret are recognisable on their own: error messages print
masks such as `sk-proj-****wxyz` (the tail), and excerpts cut a reply short in the middle of a
key (the head). So wherever the last `TAIL_LENGTH` characters of a secret at least twice that
long appear, or the first `HEAD_LENGTH` of one at least twice that long, the whole run of key
characters around them is replaced too; not when that part is all digits, which would redact
inside numbers (breaking a JSON report) while a random key part is all digits once in millions.
Values shorter than `MIN_SECRET_LENGTH` are not scrubbed by value: a short value ("true", a port
number) would redact ordinary text everywhere. Strings shaped like credentials (`sk-...`,
`org-...`, `proj_...`, bearer tokens, masked `sk-...****...`) are replaced whoever they belong to.

Pure Python with no dependencies, cheap to import: the plugin builds one at configure time.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

REDACTED = "REDACTED"
MIN_SECRET_LENGTH = 8
TAIL_LENGTH = 8
HEAD_LENGTH = 12  # longer than the tail: keys start with a fixed prefix such as "sk-proj-"

# Environment variables whose values are secrets: the SDK's own, Azure's, and by name suffix any
# key or token a session may use (other providers, proxies, CI tokens such as GITHUB_TOKEN).
SECRET_ENV_NAMES = frozenset(
    {
        "OPENAI_API_KEY",
        "OPENAI_ADMIN_KEY",
        "OPENAI_ORG_ID",
        "OPENAI_ORGANIZATION",
        "OPENAI_PROJECT_ID",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_AD_TOKEN",
    }
)
SECRET_ENV_SUFFIXES = ("_API_KEY", "_ACCESS_KEY", "_SECRET_KEY", "_TOKEN", "_SECRET", "_PASSWORD")

# Credential-shaped strings, redacted whole whoever they belong to. Each look-behind sits after
# the pattern's literal start, so that the regex engine searches for the literal (fast) rather
# than trying the pattern at every position; it keeps a slug that merely holds "sk-" after other
# letters (a word ending in "task" or "risk" followed by a long hyphenated tail) intact.
KEY_SHAPES = (
    # OpenAI (sk-proj-, sk-svcacct-, sk-admin-), Anthropic (sk-ant-), and masks: sk-proj-****wxyz
    r"sk(?<![A-Za-z0-9_-]sk)-(?:[A-Za-z0-9_-]*\*{3,}[A-Za-z0-9_*-]*|[A-Za-z0-9_-]{16,})",
    r"org(?<![A-Za-z0-9_-]org)-[A-Za-z0-9]{16,}",
    r"proj(?<![A-Za-z0-9_-]proj)_[A-Za-z0-9]{16,}",
    r"AIza(?<![A-Za-z0-9_-]AIza)[A-Za-z0-9_-]{30,}",  # Google
    r"gh(?<![A-Za-z0-9_-]gh)(?:[pousr]_[A-Za-z0-9]{30,}|ithub_pat_[A-Za-z0-9_]{30,})",  # GitHub
    r"hf(?<![A-Za-z0-9_-]hf)_[A-Za-z0-9]{30,}",  # Hugging Face
)
# Starts with a character class, so it is slow to search: run only on text holding "earer ".
BEARER = re.compile(r"[Bb]earer(?<![A-Za-z0-9_][Bb]earer) [A-Za-z0-9._~+/-]{16,}=*")
# Characters a key is made of: a recognised head or tail redacts the whole run of them around it.
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.*+/=")
_HTML_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "(?:apos|#39)"}


def configured_secrets(
    environ: Mapping[str, str] | None = None, extra: Iterable[str | None] = ()
) -> tuple[str, ...]:
    """The secret values of this environment (see SECRET_ENV_NAMES and SECRET_ENV_SUFFIXES) and
    `extra` ones (a key a client was built with), in a stable order."""
    env = os.environ if environ is None else environ
    values = [
        value
        for name, value in sorted(env.items())
        if name.upper() in SECRET_ENV_NAMES or name.upper().endswith(SECRET_ENV_SUFFIXES)
    ]
    values.extend(value for value in extra if value)
    return tuple(values)


@dataclass(frozen=True)
class Scrubber:
    """Replaces the given secrets and anything credential-shaped with REDACTED (see the module doc).

    `secrets` is kept out of the repr: a Scrubber shown in a traceback must not print them.
    """

    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        kept = {value.strip() for value in self.secrets if len(value.strip()) >= MIN_SECRET_LENGTH}
        # Longest first: a secret that contains another is replaced whole.
        object.__setattr__(self, "secrets", tuple(sorted(kept, key=lambda value: (-len(value), value))))

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, extra: Iterable[str | None] = ()
    ) -> Scrubber:
        return cls(configured_secrets(environ, extra))

    def with_secrets(self, extra: Iterable[str | None]) -> Scrubber:
        """This scrubber with more secrets (e.g. the key a client was built with)."""
        return Scrubber((*self.secrets, *(value for value in extra if value)))

    def text(self, text: str) -> str:
        if not text:
            return text
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        if "earer " in text:
            text = BEARER.sub(REDACTED, text)
        for part in self._parts:
            if part.search(text):
                text = _redact_runs(text, part)
        return text

    def bytes(self, data: bytes) -> bytes:
        """`data` scrubbed as UTF-8 text; bytes that are not UTF-8 pass through unchanged."""
        if not data:
            return data
        text = data.decode("utf-8", errors="surrogateescape")
        scrubbed = self.text(text)
        return data if scrubbed == text else scrubbed.encode("utf-8", errors="surrogateescape")

    def value(self, value: Any) -> Any:
        """Every string in a structure of dicts, lists and tuples scrubbed (keys too)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.bytes(value)
        if isinstance(value, Mapping):
            return {self.value(key): self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.value(item) for item in value)
        return value

    @functools.cached_property
    def _patterns(self) -> tuple[re.Pattern[str], ...]:
        """Each secret in any escaping, then each credential shape.

        Separate patterns, not one alternation: a pattern starting with a literal is searched for
        quickly, an alternation of them is tried at every position (20 times slower on a body).
        """
        secrets = [_escaped_pattern(secret) for secret in self.secrets]
        return tuple(re.compile(pattern) for pattern in (*secrets, *KEY_SHAPES))

    @functools.cached_property
    def _parts(self) -> tuple[re.Pattern[str], ...]:
        """Heads and tails of the secrets (see the module doc)."""
        parts = set()
        for secret in self.secrets:
            if len(secret) >= 2 * TAIL_LENGTH:
                parts.add(secret[-TAIL_LENGTH:])
            if len(secret) >= 2 * HEAD_LENGTH:
                parts.add(secret[:HEAD_LENGTH])
        return tuple(re.compile(_escaped_pattern(part)) for part in sorted(parts) if not part.isdigit())


def _redact_runs(text: str, part: re.Pattern[str]) -> str:
    """`text` with each run of key characters that holds a match of `part` replaced by REDACTED."""
    spans: list[tuple[int, int]] = []
    for match in part.finditer(text):
        start, end = match.span()
        while start > 0 and text[start - 1] in _KEY_CHARS:
            start -= 1
        while end < len(text) and text[end] in _KEY_CHARS:
            end += 1
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts.extend((text[position:start], REDACTED))
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _escaped_pattern(secret: str) -> str:
    """A regex matching `secret` with any of its non-alphanumeric characters escaped as JSON,
    a URL or HTML would write them."""
    return "".join(_char_pattern(char) for char in secret)


def _char_pattern(char: str) -> str:
    if char.isascii() and char.isalnum():
        return char
    code = ord(char)
    forms = [re.escape(char)]
    if code < 0x10000:
        forms.append(r"\\u" + _hex_any_case(f"{code:04x}"))
    if code < 0x80:
        forms.append("%" + _hex_any_case(f"{code:02x}"))
        forms.append(f"&#0*{code};")
        forms.append("&#[xX]0*" + _hex_any_case(f"{code:x}") + ";")
        if char in '"\\/':
            forms.append(re.escape("\\" + char))
        if char in _HTML_NAMED:
            forms.append(f"&{_HTML_NAMED[char]};")
    return "(?:" + "|".join(forms) + ")"


def _hex_any_case(digits: str) -> str:
    return "".join(f"[{digit}{digit.upper()}]" if digit.isalpha() else digit for digit in digits)


class ScrubbingLogFilter(logging.Filter):
    """A handler filter that scrubs each log record's message before it is written.

    The SDK and vcrpy log requests and responses at DEBUG (headers a proxy echoed the key into
    included); pytest shows captured logs in failure reports, `--log-file` and live logging.
    `scrubber` is asked for at each record, so keys a session learns later are scrubbed too.
    """

    def __init__(self, scrubber: Callable[[], Scrubber]) -> None:
        super().__init__("llmgate-secrets")
        self._scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return True
        scrubbed = self._scrubber().text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True
