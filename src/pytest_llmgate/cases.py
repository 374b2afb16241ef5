"""Case files: YAML -> validated `Case`s, with errors that name file, line, case and field.

Everything a case will do is checked here, at collection time: unknown keys (a typo must not
silently disable a check), assertion configuration, `{{var}}` references and id uniqueness.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_llmgate.assertions import AssertionConfigError, AssertionSpec, parse_assertion
from pytest_llmgate.budgets import Budgets
from pytest_llmgate.config import GateSettingError, GateSettings, validate_pricing
from pytest_llmgate.errors import CaseFileError, did_you_mean

FILE_KEYS = ("baseline", "defaults", "cases", "pricing", "gate")
# Keys a case may take; `defaults` takes the same minus the per-case ones (plus the file's `gate`).
DEFAULTABLE_KEYS = (
    "system",
    "params",
    "tags",
    "budgets",
    "tools",
    "vars",
    "assert",
    "repeat",
    "pass_rate",
    "critical",
)
DEFAULTS_KEYS = (*DEFAULTABLE_KEYS, "gate")
CASE_KEYS = ("id", "description", "prompt", "messages", "overrides", *DEFAULTABLE_KEYS)
OVERRIDE_KEYS = ("system", "params", "prompt", "messages", "tools")
BUDGET_KEYS = ("latency_ms", "output_tokens", "prompt_tokens", "total_tokens", "cost_usd")
MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool")
CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
VAR_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the line it starts on (1-based)."""

    line: int = 0


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that keeps line numbers and refuses duplicate keys (a silent overwrite hides a case).

    Built on libyaml's parser when PyYAML has it (ten times faster on large suites); its nodes
    carry the same marks, so lines are exact either way.
    """


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.MarkedYAMLError(
                problem=f"duplicate key {key!r} (the later value would silently replace the earlier)",
                problem_mark=key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line(node: Any, default: int | None) -> int | None:
    return node.line if isinstance(node, LineDict) else default


@dataclass(frozen=True)
class Case:
    """One prompt case, validated; `request_for(model)` gives what is sent to that model."""

    id: str
    path: Path
    line: int
    messages: tuple[Mapping[str, Any], ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    tools: tuple[Mapping[str, Any], ...] = ()
    tags: tuple[str, ...] = ()
    budgets: Budgets = field(default_factory=Budgets)
    assertions: tuple[AssertionSpec, ...] = ()
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    repeat: int | None = None  # samples per model; None: the run's --llm-repeat (default 1)
    pass_rate: float = 1.0  # share of samples that must pass for the model to pass the case
    critical: bool = False  # a regression always fails the item, whatever gate.per_case says

    def request_for(self, model: str) -> dict[str, Any]:
        """The keyword arguments of `chat.completions.create` for `model`, overrides applied."""
        override = self.overrides.get(model, {})
        messages = list(override.get("messages") or self.messages)
        params = {**self.params, **override.get("params", {})}
        tools = override.get("tools", self.tools)
        request: dict[str, Any] = {"model": model, "messages": [dict(message) for message in messages]}
        request.update(params)
        if tools:
            request["tools"] = [dict(tool) for tool in tools]
        return request


@dataclass(frozen=True)
class CaseFile:
    path: Path
    baseline: str | None
    cases: tuple[Case, ...]
    gate: Mapping[str, Any] = field(default_factory=dict)  # validated by config.GateSettings
    gate_line: int | None = None
    pricing: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def load_case_file(path: Path) -> CaseFile:
    """Parse and validate one `llm_*.yaml` file; raise CaseFileError on the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(path, f"cannot read the case file: {exc}") from exc
    return parse_case_file(text, path)


def load_yaml_with_lines(text: str, path: Path) -> Any:
    """Safe YAML whose mappings are `LineDict`s; duplicate keys and syntax errors name file and line."""
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise CaseFileError(path, f"invalid YAML: {exc.problem}", line=line) from exc
    except yaml.YAMLError as exc:
        raise CaseFileError(path, f"invalid YAML: {exc}") from exc


def parse_case_file(text: str, path: Path) -> CaseFile:
    document = load_yaml_with_lines(text, path)
    if document is None:
        raise CaseFileError(path, "the file is empty; it needs a 'cases:' list", hint=_EXAMPLE_HINT)
    if not isinstance(document, Mapping):
        raise CaseFileError(path, "the top level must be a mapping with 'cases:'", line=1, hint=_EXAMPLE_HINT)
    _reject_unknown(path, document, FILE_KEYS, line=_line(document, 1), case_id=None, what="top-level key")
    baseline = document.get("baseline")
    if baseline is not None and (not isinstance(baseline, str) or not baseline.strip()):
        raise CaseFileError(path, f"baseline must be a model name, got {baseline!r}", field="baseline")
    defaults = document.get("defaults") or LineDict()
    if not isinstance(defaults, Mapping):
        raise CaseFileError(path, "defaults must be a mapping", line=_line(defaults, None), field="defaults")
    _reject_unknown(path, defaults, DEFAULTS_KEYS, line=_line(defaults, None), case_id=None, what="key")
    gate, gate_line = _file_gate(path, document, defaults)
    pricing = validate_pricing(document.get("pricing"), path)
    raw_cases = document.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise CaseFileError(
            path, "'cases:' must be a non-empty list of cases", line=_line(document, 1), hint=_EXAMPLE_HINT
        )
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_cases):
        case = _parse_case(path, raw, defaults, index)
        if case.id in seen:
            raise CaseFileError(
                path,
                f"duplicate case id (first defined on line {seen[case.id]}); ids must be unique in a file",
                line=case.line,
                case_id=case.id,
                field="id",
            )
        seen[case.id] = case.line
        cases.append(case)
    return CaseFile(
        path=path, baseline=baseline, cases=tuple(cases), gate=gate, gate_line=gate_line, pricing=pricing
    )


def _file_gate(
    path: Path, document: Mapping[str, Any], defaults: Mapping[str, Any]
) -> tuple[dict[str, Any], int | None]:
    """The file's `gate:` thresholds, from the top level or `defaults:` (not both), validated."""
    if "gate" in document and "gate" in defaults:
        raise CaseFileError(
            path, "gate: is given both at the top level and under defaults:; keep one", field="gate"
        )
    raw = document.get("gate", defaults.get("gate"))
    if raw is None:
        return {}, None
    line = _line(raw, None)
    if not isinstance(raw, Mapping):
        raise CaseFileError(
            path,
            "gate must be a mapping of thresholds, e.g. {max_quality_drop: 2.0}",
            line=line,
            field="gate",
        )
    try:
        GateSettings().merged(raw, str(path), line)
    except GateSettingError as exc:
        raise CaseFileError(path, str(exc).split(": ", 1)[-1], line=line, field="gate") from None
    return dict(raw), line


_EXAMPLE_HINT = (
    "Example:\n    cases:\n      - id: greet\n        prompt: Say hello\n"
    "        assert: [{type: icontains, value: hello}]"
)


def _reject_unknown(
    path: Path,
    mapping: Mapping[str, Any],
    allowed: Sequence[str],
    *,
    line: int | None,
    case_id: str | None,
    what: str,
) -> None:
    for key in mapping:
        if key not in allowed:
            suggestion = did_you_mean(key, allowed)
            raise CaseFileError(
                path,
                f"unknown {what} {key!r}{suggestion}; allowed: {', '.join(allowed)}",
                line=line,
                case_id=case_id,
                field=str(key),
            )


def _parse_case(path: Path, raw: Any, defaults: Mapping[str, Any], index: int) -> Case:
    if not isinstance(raw, Mapping):
        raise CaseFileError(path, f"case #{index + 1} must be a mapping with an 'id', got {raw!r}")
    line = _line(raw, 1) or 1
    case_id = raw.get("id")
    if not isinstance(case_id, str) or not CASE_ID.match(case_id):
        raise CaseFileError(
            path,
            f"case #{index + 1} needs an 'id' of letters, digits, '.', '_' or '-' (got {case_id!r}); "
            "it names the pytest item",
            line=line,
            field="id",
        )
    err = _ErrorFactory(path, line, case_id)
    _reject_unknown(path, raw, CASE_KEYS, line=line, case_id=case_id, what="key")

    merged: dict[str, Any] = {}
    for key in DEFAULTABLE_KEYS:
        if key in defaults or key in raw:
            merged[key] = _merge(key, defaults.get(key), raw.get(key))
    variables = merged.get("vars") or {}
    if not isinstance(variables, Mapping):
        raise err("vars must be a mapping of name: value", "vars")

    if ("prompt" in raw) == ("messages" in raw):
        raise err("give exactly one of 'prompt' (text) or 'messages' (a chat list)", "prompt")
    system = merged.get("system")
    if system is not None and not isinstance(system, str):
        raise err("system must be text", "system")
    messages = _build_messages(err, system, raw.get("prompt"), raw.get("messages"), variables)

    params = merged.get("params") or {}
    if not isinstance(params, Mapping):
        raise err("params must be a mapping of chat.completions.create arguments", "params")
    for reserved in ("model", "messages", "tools"):
        if reserved in params:
            raise err(
                f"params may not set {reserved!r}; it comes from the case and the run options", "params"
            )
    tools = _tools(err, merged.get("tools"))
    tags = _tags(err, merged.get("tags"))
    budgets = _budgets(err, merged.get("budgets"))

    def override_messages(override: Mapping[str, Any]) -> list[dict[str, Any]]:
        """An override replaces the system text, the prompt or the whole message list."""
        if "messages" in override:
            prompt, chat = None, override["messages"]
        elif "prompt" in override:
            prompt, chat = override["prompt"], None
        else:
            prompt, chat = raw.get("prompt"), raw.get("messages")
        return _build_messages(err, override.get("system", system), prompt, chat, variables)

    overrides = _overrides(err, raw.get("overrides"), override_messages)
    assertions = _assertions(path, err, merged.get("assert"), line)
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise err("description must be text", "description")
    repeat = merged.get("repeat")
    if repeat is not None and (isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1):
        raise err(f"repeat must be a whole number of samples >= 1, got {repeat!r}", "repeat")
    pass_rate = merged.get("pass_rate", 1.0)
    if isinstance(pass_rate, bool) or not isinstance(pass_rate, int | float) or not 0 < pass_rate <= 1:
        raise err(f"pass_rate must be a number in (0, 1], e.g. 0.8, got {pass_rate!r}", "pass_rate")
    critical = merged.get("critical", False)
    if not isinstance(critical, bool):
        raise err(f"critical must be true or false, got {critical!r}", "critical")
    return Case(
        id=case_id,
        path=path,
        line=line,
        messages=tuple(messages),
        params=dict(params),
        tools=tools,
        tags=tags,
        budgets=budgets,
        assertions=assertions,
        overrides=overrides,
        vars=dict(variables),
        description=description,
        repeat=repeat,
        pass_rate=float(pass_rate),
        critical=critical,
    )


class _ErrorFactory:
    def __init__(self, path: Path, line: int, case_id: str) -> None:
        self.path, self.line, self.case_id = path, line, case_id

    def __call__(self, message: str, field: str | None = None, line: int | None = None) -> CaseFileError:
        return CaseFileError(self.path, message, line=line or self.line, case_id=self.case_id, field=field)


def _merge(key: str, default: Any, value: Any) -> Any:
    """Case keys win; mappings merge key by key, `tags` and `assert` lists add to the defaults."""
    if default is None:
        return value
    if value is None:
        return default
    if isinstance(default, Mapping) and isinstance(value, Mapping):
        return {**default, **value}
    if key in ("tags", "assert") and isinstance(default, list) and isinstance(value, list):
        return [*default, *(item for item in value if key != "tags" or item not in default)]
    return value


def _substitute(err: _ErrorFactory, text: str, variables: Mapping[str, Any], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none defined"
            raise err(f"{where} uses {{{{{name}}}}} but vars has no {name!r} ({known})", "vars")
        return str(variables[name])

    return VAR_REFERENCE.sub(replace, text)


def _build_messages(
    err: _ErrorFactory,
    system: str | None,
    prompt: Any,
    messages: Any,
    variables: Mapping[str, Any],
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    if system is not None:
        result.append({"role": "system", "content": _substitute(err, system, variables, "system")})
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise err("prompt must be non-empty text", "prompt")
        result.append({"role": "user", "content": _substitute(err, prompt, variables, "prompt")})
        return result
    if not isinstance(messages, list) or not messages:
        raise err("messages must be a non-empty list of {role, content}", "messages")
    for position, message in enumerate(messages):
        line = _line(message, None)
        if not isinstance(message, Mapping) or "role" not in message:
            raise err(f"messages[{position}] must be a mapping with 'role' and 'content'", "messages", line)
        if message["role"] not in MESSAGE_ROLES:
            raise err(
                f"messages[{position}] has role {message['role']!r}; use one of {', '.join(MESSAGE_ROLES)}",
                "messages",
                line,
            )
        rendered = dict(message)
        content = message.get("content")
        if isinstance(content, str):
            rendered["content"] = _substitute(err, content, variables, f"messages[{position}]")
        result.append(rendered)
    return result


def _tools(err: _ErrorFactory, raw: Any) -> tuple[Mapping[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise err("tools must be a list of OpenAI tool definitions", "tools")
    for position, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise err(
                f"tools[{position}] must look like "
                "{type: function, function: {name: ..., parameters: ...}}",
                "tools",
                _line(tool, None),
            )
    return tuple(dict(tool) for tool in raw)


def _tags(err: _ErrorFactory, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(tag, str) and tag.isidentifier() for tag in raw):
        raise err(f"tags must be a list of identifiers (they become pytest markers), got {raw!r}", "tags")
    return tuple(raw)


def _budgets(err: _ErrorFactory, raw: Any) -> Budgets:
    if raw is None:
        return Budgets()
    if not isinstance(raw, Mapping):
        raise err("budgets must be a mapping like {latency_ms: 2000, output_tokens: 300}", "budgets")
    for key, value in raw.items():
        if key not in BUDGET_KEYS:
            raise err(f"unknown budget {key!r}; allowed: {', '.join(BUDGET_KEYS)}", f"budgets.{key}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise err(f"budget {key} must be a positive number, got {value!r}", f"budgets.{key}")
    return Budgets(**{key: float(value) for key, value in raw.items()})


def _overrides(
    err: _ErrorFactory, raw: Any, build_messages: Callable[[Mapping[str, Any]], list[dict[str, Any]]]
) -> Mapping[str, Mapping[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise err("overrides must map a model name to {system, params, prompt, messages, tools}", "overrides")
    result: dict[str, Mapping[str, Any]] = {}
    for model, override in raw.items():
        if not isinstance(override, Mapping):
            raise err(f"overrides[{model!r}] must be a mapping", "overrides")
        for key in override:
            if key not in OVERRIDE_KEYS:
                suggestion = did_you_mean(key, OVERRIDE_KEYS)
                raise err(
                    f"unknown key {key!r} in overrides[{model!r}]{suggestion}; "
                    f"allowed: {', '.join(OVERRIDE_KEYS)}",
                    f"overrides.{model}.{key}",
                    _line(override, None),
                )
        resolved: dict[str, Any] = {}
        if "params" in override:
            if not isinstance(override["params"], Mapping):
                raise err(f"overrides[{model!r}].params must be a mapping", f"overrides.{model}.params")
            resolved["params"] = dict(override["params"])
        if "tools" in override:
            resolved["tools"] = _tools(err, override["tools"])
        if any(key in override for key in ("system", "prompt", "messages")):
            resolved["messages"] = build_messages(override)
        result[str(model)] = resolved
    return result


def _assertions(path: Path, err: _ErrorFactory, raw: Any, case_line: int) -> tuple[AssertionSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise err("assert must be a list of assertions like {type: contains, value: ...}", "assert")
    specs: list[AssertionSpec] = []
    for position, entry in enumerate(raw):
        try:
            specs.append(parse_assertion(entry, base_dir=path.parent))
        except AssertionConfigError as exc:
            field_name = f"assert[{position}]" + (f".{exc.field}" if exc.field else "")
            raise err(exc.message, field_name, _line(entry, case_line)) from exc
    return tuple(specs)
