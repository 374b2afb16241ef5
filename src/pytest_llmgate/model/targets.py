"""Model targets: a name under test with everything needed to call it, record it and price it.

A target is declared under `models:` in `llmgate.yaml` (project-wide) or at the top of a case
file (the file's entry wins over the project's). A name nobody declares is a target with every
default, so `--llm-candidate=gpt-5.5` with no configuration means what it always meant: the
model id `gpt-5.5` at the session's base URL with `OPENAI_API_KEY`.

Pure: no SDK, no environment lookups until `api_key()` is called, which a replay never does.
Where a call goes (`Endpoint`) is resolved here and nowhere else, so Azure's deployment URLs,
`api-version` query and `api-key` header are one function, not branches through the client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from pytest_llmgate.errors import CaseFileError, did_you_mean
from pytest_llmgate.model.params import APIS, is_reasoning_model, unknown_param
from pytest_llmgate.model.params import POLICIES as PARAM_POLICIES
from pytest_llmgate.model.wire import OPERATIONS
from pytest_llmgate.pricing import PriceTable

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
OPENAI_BASE_URL = "https://api.openai.com/v1"
TARGET_KEYS = (
    "model",
    "base_url",
    "api_key_env",
    "azure",
    "headers",
    "params",
    "price",
    "concurrency",
    "api",
    "reasoning",
    "param_policy",
)
AZURE_KEYS = ("deployment", "api_version")
PRICE_KEYS = ("input", "cached_input", "output", "per_request")
# Headers that carry credentials: they come from api_key_env, never from a file.
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "openai-organization", "cookie"})
_KEY_SHAPED = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{16,}|\bBearer\s+\S{16,}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_Fail = Callable[..., CaseFileError]


@dataclass(frozen=True)
class AzureDeployment:
    """An Azure OpenAI deployment: `{base_url}/openai/deployments/{deployment}/...?api-version=`."""

    deployment: str
    api_version: str


@dataclass(frozen=True)
class TargetPrice:
    """USD per 1M tokens (input, cached input, output) and per call, as declared on a target."""

    input: float
    output: float
    cached_input: float | None = None
    per_request: float = 0.0


@dataclass(frozen=True)
class Endpoint:
    """Where one operation of a target is sent and how it authenticates (no key value here)."""

    url: str
    query: Mapping[str, str]
    auth_header: str  # "Authorization" (Bearer) or "api-key" (Azure)
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Target:
    """One model under test. `declared_at` is "file:line" of its entry, or None for a bare name."""

    name: str
    model: str
    base_url: str | None = None
    api_key_env: str = DEFAULT_KEY_ENV
    azure: AzureDeployment | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    price: TargetPrice | None = None
    concurrency: int | None = None
    declared_at: str | None = None
    api: str = "chat"  # the wire format: chat (/chat/completions) or responses (/responses)
    reasoning: bool | None = None  # None: known reasoning families (o1, o3, o4, gpt-5...) by id
    param_policy: str | None = None  # None: the file's, then adapt

    @property
    def is_reasoning(self) -> bool:
        """Whether the model follows the reasoning-model parameter rules."""
        return self.reasoning if self.reasoning is not None else is_reasoning_model(self.model)

    @classmethod
    def bare(cls, name: str) -> Target:
        """The target of a name no `models:` entry declares: every default."""
        return cls(name=name, model=name)

    def endpoint(self, operation: str, default_base_url: str | None) -> Endpoint:
        """The URL, query and auth header of `operation` (e.g. "chat/completions").

        The base URL is the target's own, else `default_base_url` (the `--llm-base-url` flag,
        then `$OPENAI_BASE_URL`, resolved by the caller), else OpenAI's.
        """
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
        base = (self.base_url or default_base_url or OPENAI_BASE_URL).rstrip("/")
        if self.azure is not None:
            if base.endswith("/openai"):
                base = base[: -len("/openai")]
            url = f"{base}/openai/deployments/{self.azure.deployment}/{operation}"
            query = MappingProxyType({"api-version": self.azure.api_version})
            return Endpoint(url, query, "api-key", self.headers)
        return Endpoint(f"{base}/{operation}", MappingProxyType({}), "Authorization", self.headers)

    def api_key(self, environ: Mapping[str, str]) -> str | None:
        """The key from `api_key_env`, read only when a call is made (replay never asks)."""
        return environ.get(self.api_key_env) or None

    def missing_key_message(self) -> str:
        where = f" (declared at {self.declared_at})" if self.declared_at else ""
        return (
            f"target {self.name!r}{where} needs its API key in ${self.api_key_env}, which is not set: "
            f"export {self.api_key_env}=... before a live run, or replay the recordings with "
            f"--llm-record-mode=none (no key needed)"
        )


@dataclass(frozen=True)
class Targets:
    """The declared targets of one scope (project or file); undeclared names resolve to bare ones."""

    declared: Mapping[str, Target] = field(default_factory=lambda: MappingProxyType({}))

    def resolve(self, name: str, *inner: Targets) -> Target:
        """`name`'s target: the innermost scope that declares it wins (file over project)."""
        for scope in reversed(inner):
            if name in scope.declared:
                return scope.declared[name]
        return self.declared.get(name) or Target.bare(name)

    def __bool__(self) -> bool:
        return bool(self.declared)


def parse_targets(raw: Any, path: Path) -> Targets:
    """A `models:` mapping validated into `Targets`; CaseFileError naming file, line and fix."""
    if raw is None:
        return Targets()
    line = getattr(raw, "line", None)
    if not isinstance(raw, Mapping):
        raise CaseFileError(
            path,
            "models must map a target name to its settings, e.g. {gpt-4o: {model: gpt-4o-2024-08-06}}",
            line=line,
            field="models",
        )
    targets = {}
    for name, entry in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise CaseFileError(path, f"a target name must be a non-empty string, got {name!r}", line=line)
        targets[name] = _parse_target(
            name, {} if entry is None else entry, path, getattr(entry, "line", line)
        )
    return Targets(MappingProxyType(targets))


def _parse_target(name: str, entry: Any, path: Path, line: int | None) -> Target:
    where = f"models.{name}"

    def fail(message: str, key: str | None = None) -> CaseFileError:
        return CaseFileError(path, message, line=line, field=f"{where}.{key}" if key else where)

    if not isinstance(entry, Mapping):
        raise fail(f"target {name!r} must be a mapping of {', '.join(TARGET_KEYS)}")
    for key in entry:
        if key in ("api_key", "key", "token"):
            raise fail(
                "a literal API key does not belong in a file (it would be committed); put it in an "
                "environment variable and name that: api_key_env: MY_PROVIDER_API_KEY",
                str(key),
            )
        if key not in TARGET_KEYS:
            raise fail(
                f"unknown key {key!r}{did_you_mean(key, TARGET_KEYS)}; allowed: {', '.join(TARGET_KEYS)}",
                str(key),
            )
    model = entry.get("model", name)
    if not isinstance(model, str) or not model.strip():
        raise fail(f"model must be the model id sent to the API, got {model!r}", "model")
    base_url = entry.get("base_url")
    if base_url is not None:
        parts = urlsplit(str(base_url)) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise fail(f"base_url must be an http(s) URL, got {base_url!r}", "base_url")
        if parts.username or parts.password or _KEY_SHAPED.search(str(base_url)):
            raise fail("base_url must not carry credentials; use api_key_env", "base_url")
    key_env = entry.get("api_key_env", DEFAULT_KEY_ENV)
    if not isinstance(key_env, str) or not _ENV_NAME.match(key_env):
        hint = (
            " (that looks like a key itself)"
            if isinstance(key_env, str) and _KEY_SHAPED.search(key_env)
            else ""
        )
        raise fail(
            f"api_key_env must name an environment variable, e.g. AZURE_OPENAI_API_KEY, got "
            f"{_redacted(key_env)}{hint}",
            "api_key_env",
        )
    return Target(
        name=name,
        model=model,
        base_url=base_url,
        api_key_env=key_env,
        azure=_azure(entry.get("azure"), fail),
        headers=_headers(entry.get("headers"), fail),
        params=_params(entry.get("params"), fail),
        price=_price(entry.get("price"), fail),
        concurrency=_concurrency(entry.get("concurrency"), fail),
        declared_at=f"{path}:{line}" if line else str(path),
        api=_choice(entry.get("api", "chat"), APIS, "api", fail),
        reasoning=_flag(entry.get("reasoning"), "reasoning", fail),
        param_policy=None
        if entry.get("param_policy") is None
        else _choice(entry.get("param_policy"), PARAM_POLICIES, "param_policy", fail),
    )


def _azure(raw: Any, fail: _Fail) -> AzureDeployment | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise fail('azure must be {deployment: NAME, api_version: "2024-10-21"}', "azure")
    for key in raw:
        if key not in AZURE_KEYS:
            raise fail(
                f"unknown key {key!r}{did_you_mean(key, AZURE_KEYS)} in azure; allowed: "
                f"{', '.join(AZURE_KEYS)}",
                f"azure.{key}",
            )
    values = {}
    for key in AZURE_KEYS:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise fail(
                f'azure.{key} is required and must be a string, e.g. api_version: "2024-10-21"',
                f"azure.{key}",
            )
        values[key] = value
    return AzureDeployment(values["deployment"], values["api_version"])


def _headers(raw: Any, fail: _Fail) -> Mapping[str, str]:
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise fail("headers must map a header name to a string value", "headers")
    headers = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, str | int | float) or isinstance(value, bool):
            raise fail(f"header {name!r} must have a string value", f"headers.{name}")
        if name.lower() in _SECRET_HEADERS or _KEY_SHAPED.search(str(value)):
            raise fail(
                f"header {name!r} carries a credential; credentials come from the environment only "
                f"(api_key_env), never from a file",
                f"headers.{name}",
            )
        headers[name] = str(value)
    return MappingProxyType(headers)


def _params(raw: Any, fail: _Fail) -> Mapping[str, Any]:
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise fail("params must be a mapping of request parameters, e.g. {temperature: 0}", "params")
    if "model" in raw or "messages" in raw:
        raise fail("params must not set model or messages (use the target's model: and the case)", "params")
    unknown = unknown_param(raw, "params")
    if unknown is not None:
        name, message = unknown
        raise fail(message, f"params.{name}")
    return MappingProxyType(dict(raw))


def _price(raw: Any, fail: _Fail) -> TargetPrice | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise fail("price must be {input, output, cached_input, per_request} in USD per 1M tokens", "price")
    for key in raw:
        if key not in PRICE_KEYS:
            raise fail(
                f"unknown key {key!r}{did_you_mean(key, PRICE_KEYS)} in price; allowed: "
                f"{', '.join(PRICE_KEYS)}",
                f"price.{key}",
            )
    values: dict[str, float] = {}
    for key, value in raw.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise fail(f"price.{key} must be a number >= 0 (USD), got {value!r}", f"price.{key}")
        values[key] = float(value)
    for key in ("input", "output"):
        if key not in values:
            raise fail(f"price.{key} is required (USD per 1M tokens)", f"price.{key}")
    return TargetPrice(
        input=values["input"],
        output=values["output"],
        cached_input=values.get("cached_input"),
        per_request=values.get("per_request", 0.0),
    )


def _concurrency(raw: Any, fail: _Fail) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise fail(f"concurrency must be a whole number >= 1, got {raw!r}", "concurrency")
    return raw


def _choice(raw: Any, allowed: tuple[str, ...], key: str, fail: _Fail) -> str:
    if raw not in allowed:
        raise fail(f"{key} must be one of {', '.join(allowed)}, got {raw!r}", key)
    return str(raw)


def _flag(raw: Any, key: str, fail: _Fail) -> bool | None:
    if raw is not None and not isinstance(raw, bool):
        raise fail(f"{key} must be true or false, got {raw!r}", key)
    return raw


def _redacted(value: Any) -> str:
    text = repr(value)
    return "a key-shaped value (not shown)" if _KEY_SHAPED.search(text) else text


def resolve_targets(names: Iterable[str | None], project: Targets, file: Targets) -> dict[str, Target]:
    """The target of every model name a file's run uses (baseline, candidates, judge)."""
    return {name: project.resolve(name, file) for name in names if name}


def with_target_prices(table: PriceTable, targets: Mapping[str, Target]) -> PriceTable:
    """`table` plus each target's own price under its name; a target without one is priced as
    the model id it sends (`gpt-5.5-high` with `model: gpt-5.5` costs what gpt-5.5 costs)."""
    overrides: dict[str, Mapping[str, Any]] = {}
    for name, target in targets.items():
        if target.price is not None:
            price = target.price
            entry: dict[str, Any] = {"input": price.input, "output": price.output}
            if price.cached_input is not None:
                entry["cached_input"] = price.cached_input
            if price.per_request:
                entry["per_request"] = price.per_request
            overrides[name] = entry
    table = table.merged(overrides, origin="models:") if overrides else table
    aliases = {
        name: target.model
        for name, target in targets.items()
        if name not in overrides and name != target.model and table.lookup(name) is None
    }
    if not aliases:
        return table
    return table.aliased(aliases)


def missing_live_keys(targets: Mapping[str, Target], environ: Mapping[str, str]) -> list[Target]:
    """Targets that name their own key variable, unset here: a live run cannot call them."""
    return [
        target
        for target in targets.values()
        if target.api_key_env != DEFAULT_KEY_ENV and not environ.get(target.api_key_env)
    ]
