"""Case files: YAML -> validated `Case`s, with errors that name file, line, case and field.

Everything a case will do is checked here, at collection time: unknown keys (a typo must not
silently disable a check), assertion configuration, `{{var}}` references and id uniqueness.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_llmgate import datafiles
from pytest_llmgate.assertions import AssertionConfigError, AssertionSpec, parse_assertion
from pytest_llmgate.budgets import Budgets
from pytest_llmgate.config import GateSettingError, GateSettings, validate_pricing
from pytest_llmgate.datafiles import FILE_PREFIX, FileRefError, Loaded, Row, is_reference
from pytest_llmgate.errors import CaseFileError, did_you_mean
from pytest_llmgate.model.params import POLICIES as PARAM_POLICIES
from pytest_llmgate.model.params import unknown_param
from pytest_llmgate.model.targets import Targets, parse_targets
from pytest_llmgate.templates import TemplateProblem, is_template, render, render_data, resolve_vars

FILE_KEYS = ("baseline", "models", "param_policy", "defaults", "prompts", "cases", "pricing", "gate")
# Keys a case may take; `defaults` takes the same minus the per-case ones (plus the file's `gate`).
DEFAULTABLE_KEYS = (
    "prompt",
    "messages",
    "system",
    "params",
    "tags",
    "budgets",
    "tools",
    "vars",
    "assert",
    "overrides",
    "repeat",
    "pass_rate",
    "critical",
    "threshold",
    "weight",
)
DEFAULTS_KEYS = (*DEFAULTABLE_KEYS, "gate")
CASE_KEYS = ("id", "description", *DEFAULTABLE_KEYS)
PROMPT_KEYS = ("id", "prompt", "messages")
# Assertion kinds whose value is code or a function reference: never rendered as a template
# (Python's own braces, `f"{{x}}"`, would be read as one), and `python`'s `file://` is its own.
CODE_KINDS = ("python", "python-tests")
OVERRIDE_KEYS = ("system", "params", "prompt", "messages", "tools")
BUDGET_KEYS = ("latency_ms", "output_tokens", "prompt_tokens", "total_tokens", "cost_usd", "ttft_ms")
MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool")
CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # whole id (fullmatch): no trailing newline
MAX_CASE_ID = 255  # a cassette folder is named after the id; no file system takes a longer name
ALIAS_EXPANSION_LIMIT = 1_000_000
"""How much YAML aliases may add to a case file, in nodes plus scalar characters once expanded.

Anchors and aliases are fine for sharing a block between cases; nested ones can describe a
document of gigabytes in a few lines (an "alias bomb"), which rendering a prompt would build.
A million leaves room for a long system prompt shared by hundreds of cases."""
VAR_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the line it starts on and each own key's line (1-based), so
    an error points at the offending key, not at the case's `- id:` line."""

    line: int = 0
    key_lines: dict[Any, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}


def key_line(mapping: Any, field: str | None) -> int | None:
    """The line of `field` ("params", "params.temprature", "overrides.gpt-4o.params") in `mapping`,
    as deep as the path is found; None when the mapping has no line for its first key."""
    found: int | None = None
    node = mapping
    parts = [part.rstrip("]") for part in re.split(r"[.\[]", field or "")]
    while parts and isinstance(node, LineDict):
        # Keys may hold dots (`gpt-5.5`): the longest run of parts that is a key wins.
        for end in range(len(parts), 0, -1):
            key = ".".join(parts[:end])
            if key in node.key_lines:
                found, node, parts = node.key_lines[key], node[key], parts[end:]
                break
        else:
            break
    return found


_TAG_PREFIX = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG_PREFIX + "merge"
_STR_TAG = _TAG_PREFIX + "str"
_SEQ_TAG = _TAG_PREFIX + "seq"
_MAP_TAG = _TAG_PREFIX + "map"


def _check_expansion(root: yaml.Node) -> None:
    """MarkedYAMLError at the alias that makes the document expand past ALIAS_EXPANSION_LIMIT.

    Each node's expanded size (1, plus its characters for a scalar, plus its children's sizes)
    is computed once; every further reference to a node is an alias and adds that size again.
    Linear in the size of the file, whatever the aliases would expand to.
    """
    sizes: dict[int, int] = {}
    extra = 0
    open_nodes: set[int] = set()

    def size(node: yaml.Node, parent: yaml.Node) -> int:
        nonlocal extra
        known = sizes.get(id(node))
        if known is not None:
            extra += known
            if extra > ALIAS_EXPANSION_LIMIT:
                raise yaml.MarkedYAMLError(
                    problem=f"YAML aliases expand this file past {ALIAS_EXPANSION_LIMIT:,} nodes and "
                    "characters (an alias bomb?); share less through anchors, or use defaults:",
                    problem_mark=parent.start_mark,
                )
            return known
        if id(node) in open_nodes:
            raise yaml.MarkedYAMLError(
                problem="a YAML alias refers to a node that contains it (a recursive structure)",
                problem_mark=parent.start_mark,
            )
        if isinstance(node, yaml.ScalarNode):
            total = 1 + len(node.value)
        else:
            open_nodes.add(id(node))
            children = (
                [item for pair in node.value for item in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
            )
            total = 1 + sum(size(child, node) for child in children)
            open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root, root)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
    """A mapping with YAML's merge semantics: keys merged in by `<<` are overridden by the
    mapping's own keys (and, from a list of mappings, an earlier one wins over a later one),
    while a key given twice among the mapping's own keys is still an error.

    Done here rather than by PyYAML's `flatten_mapping`, whose order of precedence changed
    between releases.
    """
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    sources: list[Any] = []
    own: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE_TAG:
            own.append((key_node, value_node))
            continue
        merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in merged:
            if not isinstance(source, yaml.MappingNode):
                raise yaml.MarkedYAMLError(
                    problem=f"'<<' merges mappings, but found a {source.id}", problem_mark=source.start_mark
                )
            sources.append(loader.construct_object(source, deep=True))
    for source in reversed(sources):
        mapping.update(source)
    own_keys: set[Any] = set()
    for key_node, value_node in own:
        key = loader.construct_object(key_node, deep=True)
        if key in own_keys:
            raise yaml.MarkedYAMLError(
                problem=f"duplicate key {key!r} (the later value would silently replace the earlier)",
                problem_mark=key_node.start_mark,
            )
        own_keys.add(key)
        mapping.key_lines[key] = key_node.start_mark.line + 1
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


class _LineLoading:
    """Safe loading that keeps line numbers and refuses duplicate keys (a silent overwrite hides a
    case): the node path, which `_build_from_events` matches and which reports every error.

    The composed document is measured before anything is built from it, so aliases cannot expand
    past ALIAS_EXPANSION_LIMIT.
    """

    def get_single_data(self) -> Any:
        node = self.get_single_node()  # type: ignore[attr-defined]
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)  # type: ignore[attr-defined]


class _PyLineLoader(_LineLoading, yaml.SafeLoader):
    """The loader on PyYAML's pure-Python parser, for installations without libyaml."""


_PyLineLoader.add_constructor(_MAP_TAG, _construct_mapping)
if TYPE_CHECKING:  # CSafeLoader exists where PyYAML has libyaml
    _Loader = type[yaml.SafeLoader] | type[yaml.CSafeLoader]
_LineLoader: _Loader = _PyLineLoader
if yaml.__with_libyaml__:

    class _CLineLoader(_LineLoading, yaml.CSafeLoader):
        """The loader on libyaml's parser (ten times faster on large suites); its nodes and events
        carry the same marks, so lines are exact either way."""

    _CLineLoader.add_constructor(_MAP_TAG, _construct_mapping)
    _LineLoader = _CLineLoader


# Scalar tags the event builder constructs; their values are immutable, so one object may stand
# for every plain scalar of the same text.
_SCALAR_TAGS = frozenset(
    _TAG_PREFIX + name for name in ("null", "bool", "int", "float", "timestamp", "binary")
)
_MAX_EVENT_DEPTH = 50  # deeper documents take the node path (and its "nested too deeply")
_SCALAR, _ALIAS, _MAPPING, _SEQUENCE, _MAPPING_END, _SEQUENCE_END, _OTHER = range(1, 8)
# Event classes by name: a second import of PyYAML (pytester's in-process runs) makes new event
# classes, while libyaml's extension module keeps making the first ones.
_EVENT_KINDS = {
    "ScalarEvent": _SCALAR,
    "AliasEvent": _ALIAS,
    "MappingStartEvent": _MAPPING,
    "SequenceStartEvent": _SEQUENCE,
    "MappingEndEvent": _MAPPING_END,
    "SequenceEndEvent": _SEQUENCE_END,
}
_MERGE = object()  # what a `<<` key stands for while its mapping is built


class _NodePathNeeded(Exception):
    """The event builder met what it does not build exactly as the node path does: an error, a
    tag other than the plain ones, an alias into its own node, deep nesting, several documents."""


def _build_from_events(loader: Any) -> Any:
    """The document straight from the parser's events, as `_LineLoading` builds it from nodes:
    the same LineDicts, lines, merge keys, shared aliased objects and expansion bound.

    Composing nodes first costs two marks per node, three calls back into Python per node (the
    resolver's) and a node tree that keeps the garbage collector busy: on 2,000 cases that was
    most of the time collection spent on the file. Whatever this function does not build exactly
    the same way raises _NodePathNeeded, and the node path then builds the document or reports
    its error and line; so errors, alias bombs and rare tags only need noticing here.
    """
    get_event = loader.get_event
    resolve = loader.resolve
    implicit_starts = loader.yaml_implicit_resolvers  # keyed by a plain scalar's first character
    constructors = loader.yaml_constructors
    if None in implicit_starts or loader.yaml_path_resolvers:
        raise _NodePathNeeded
    kinds: dict[type, int] = {}
    plain: dict[str, Any] = {}  # a plain scalar that may not be text: its text -> its value
    # anchor -> (value, expanded size or -1 while still open, line)
    anchors: dict[str, tuple[Any, int, int]] = {}
    size = 0  # nodes plus scalar characters read, as _check_expansion counts them
    extra = 0  # what aliases add to that

    def kind_of(event: Any) -> int:
        cls = type(event)
        kind = kinds[cls] = _EVENT_KINDS.get(cls.__name__, _OTHER)
        return kind

    def typed(value: str, tag: str, event: Any) -> Any:
        if tag == _STR_TAG:
            return value
        if tag == _MERGE_TAG:
            return _MERGE
        if tag not in _SCALAR_TAGS:
            raise _NodePathNeeded
        node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, event.style)
        return constructors[tag](loader, node)

    def scalar(event: Any) -> Any:
        nonlocal size
        value: str = event.value
        size += 1 + len(value)
        tag = event.tag
        if tag is None:
            if not event.implicit[0] or value[:1] not in implicit_starts:
                result: Any = value
            elif value in plain:
                result = plain[value]
            else:
                tag = resolve(yaml.ScalarNode, value, event.implicit)
                result = plain[value] = typed(value, tag, event)
        else:
            if tag == "!":
                tag = resolve(yaml.ScalarNode, value, event.implicit)
            result = typed(value, tag, event)
        if event.anchor is not None:
            if event.anchor in anchors:
                raise _NodePathNeeded
            anchors[event.anchor] = (result, 1 + len(value), event.start_mark.line + 1)
        return result

    def alias(event: Any) -> tuple[Any, int, int]:
        nonlocal extra
        target = anchors.get(event.anchor)
        if target is None or target[1] < 0:
            raise _NodePathNeeded
        extra += target[1]
        if extra > ALIAS_EXPANSION_LIMIT:
            raise _NodePathNeeded
        return target

    def node(event: Any, kind: int, depth: int) -> Any:
        """Any node but a scalar (which the loops below build themselves, it being most nodes)."""
        if kind == _ALIAS:
            value = alias(event)[0]
            if value is _MERGE:
                raise _NodePathNeeded
            return value
        if depth >= _MAX_EVENT_DEPTH:
            raise _NodePathNeeded
        if kind == _MAPPING:
            return mapping(event, depth + 1)
        if kind == _SEQUENCE:
            return sequence(event, depth + 1)
        raise _NodePathNeeded

    def start(event: Any, value: Any, default_tag: str) -> tuple[int, int]:
        nonlocal size
        if event.tag is not None and event.tag != "!" and event.tag != default_tag:
            raise _NodePathNeeded
        before = size, extra
        size += 1
        if event.anchor is not None:
            if event.anchor in anchors:
                raise _NodePathNeeded
            anchors[event.anchor] = (value, -1, event.start_mark.line + 1)
        return before

    def close(event: Any, before: tuple[int, int]) -> None:
        """An anchored collection is complete: aliases may now refer to it."""
        value, _, line = anchors[event.anchor]
        anchors[event.anchor] = (value, size - before[0] + extra - before[1], line)

    def value_of(item: Any, kind: int, depth: int) -> Any:
        """A value in a list or mapping: a `<<` anywhere but a mapping key is the node path's."""
        if kind != _SCALAR:
            return node(item, kind, depth)
        value = scalar(item)
        if value is _MERGE:
            raise _NodePathNeeded
        return value

    def sequence(event: Any, depth: int) -> list[Any]:
        result: list[Any] = []
        before = start(event, result, _SEQ_TAG)
        append = result.append
        while True:
            item = get_event()
            kind = kinds.get(type(item)) or kind_of(item)
            if kind == _SEQUENCE_END:
                break
            append(value_of(item, kind, depth))
        if event.anchor is not None:
            close(event, before)
        return result

    def mapping(event: Any, depth: int) -> LineDict:
        result = LineDict()
        result.line = event.start_mark.line + 1
        before = start(event, result, _MAP_TAG)
        key_lines = result.key_lines
        sources: list[LineDict] = []
        while True:
            item = get_event()
            kind = kinds.get(type(item)) or kind_of(item)
            if kind == _SCALAR:
                line = item.start_mark.line + 1
                key = scalar(item)
            elif kind == _MAPPING_END:
                break
            elif kind == _ALIAS:
                key, _, line = alias(item)  # an alias of a `<<` key is one too
            else:  # a mapping or list as a key cannot be hashed: the node path says so
                raise _NodePathNeeded
            item = get_event()
            value = value_of(item, kinds.get(type(item)) or kind_of(item), depth)
            if key is _MERGE:
                merged = value if type(value) is list else [value]
                if not all(type(source) is LineDict for source in merged):
                    raise _NodePathNeeded
                sources.extend(merged)
            elif key in result:
                raise _NodePathNeeded
            else:
                result[key] = value
                key_lines[key] = line
        if sources:  # merged keys first, the mapping's own keys over them (as _construct_mapping)
            own = list(result.items())
            result.clear()
            for source in reversed(sources):
                result.update(source)
            result.update(own)
        if event.anchor is not None:
            close(event, before)
        return result

    def expect(name: str) -> Any:
        event = get_event()
        if type(event).__name__ != name:
            raise _NodePathNeeded
        return event

    expect("StreamStartEvent")
    event = get_event()
    if type(event).__name__ == "StreamEndEvent":
        return None
    if type(event).__name__ != "DocumentStartEvent":
        raise _NodePathNeeded
    event = get_event()
    kind = kind_of(event)
    document = scalar(event) if kind == _SCALAR else node(event, kind, 0)
    if document is _MERGE:
        raise _NodePathNeeded
    expect("DocumentEndEvent")
    expect("StreamEndEvent")  # a second document is the node path's error
    return document


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
    threshold: float | None = None  # the weighted score that passes a reply (promptfoo's threshold)
    weight: float = 1.0  # the case's weight in the suite's quality score and gate[quality]

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
    targets: Targets = field(default_factory=Targets)
    param_policy: str | None = None  # adapt or strict; None: adapt


def load_case_file(path: Path, root: Path | None = None) -> CaseFile:
    """Parse and validate one `llm_*.yaml` file; raise CaseFileError on the first problem.

    `root` is the project root that `file://` references may not leave (None: the file's folder).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(path, f"cannot read the case file: {exc}") from exc
    return parse_case_file(text, path, root)


def load_yaml_with_lines(text: str, path: Path) -> Any:
    """Safe YAML whose mappings are `LineDict`s; duplicate keys and syntax errors name file and line."""
    try:
        return _load_yaml(text, _LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise CaseFileError(path, f"invalid YAML: {exc.problem}", line=line) from exc
    except yaml.YAMLError as exc:
        raise CaseFileError(path, f"invalid YAML: {exc}") from exc
    except RecursionError:
        raise CaseFileError(path, "invalid YAML: nested too deeply") from None


def _load_yaml(text: str, loader: _Loader, *, from_events: bool = True) -> Any:
    """The document from events when they build it exactly (fast), else from composed nodes."""
    if from_events:
        events = loader(text)
        try:
            return _build_from_events(events)
        except Exception:  # the node path builds it, or raises the error to report
            pass
        finally:
            events.dispose()
    return yaml.load(text, Loader=loader)


def parse_case_file(text: str, path: Path, root: Path | None = None) -> CaseFile:
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
    if "prompt" in defaults and "messages" in defaults:
        raise CaseFileError(
            path,
            "defaults may give 'prompt' or 'messages', not both",
            line=_line(defaults, None),
            field="prompt",
        )
    gate, gate_line = _file_gate(path, document, defaults)
    pricing = validate_pricing(document.get("pricing"), path)
    files = _Files(path.parent, root or path.parent)
    prompts = _prompts(path, document.get("prompts"), _line(document, 1))
    if prompts and ("prompt" in defaults or "messages" in defaults):
        raise CaseFileError(
            path,
            "give prompts: (every case runs with each) or defaults.prompt/messages (one for all), not both",
            line=_line(defaults, None),
            field="prompts",
        )
    rows = _case_rows(path, document.get("cases"), files, _line(document, 1))
    cases: list[Case] = []
    seen: dict[str, int] = {}
    specs: _SpecCache = {}
    for row in rows:
        for case in _parse_case(path, row, defaults, prompts, files, specs):
            if case.id in seen:
                raise CaseFileError(
                    row.path,
                    (f"{row.label}: " if row.path != path else "")
                    + f"duplicate case id (first defined on line {seen[case.id]}); ids must be unique",
                    line=row.line,
                    case_id=case.id,
                    field="id",
                )
            seen[case.id] = case.line
            cases.append(case)
    return CaseFile(
        path=path,
        baseline=baseline,
        cases=tuple(cases),
        gate=gate,
        gate_line=gate_line,
        pricing=pricing,
        targets=parse_targets(document.get("models"), path),
        param_policy=_param_policy(path, document.get("param_policy")),
    )


class _Files:
    """`file://` references of one case file: resolved from its folder, kept inside the project."""

    def __init__(self, base_dir: Path, root: Path) -> None:
        self.base_dir, self.root = base_dir, root

    def load(self, reference: str, err: _ErrorFactory, field: str, line: int | None = None) -> Loaded:
        try:
            return datafiles.load(reference, self.base_dir, self.root)
        except FileRefError as exc:
            raise err(_file_problem(exc), field, line) from None

    def rows(self, reference: str, path: Path, line: int | None) -> list[Row]:
        try:
            return datafiles.load_rows(reference, self.base_dir, self.root)
        except FileRefError as exc:
            if exc.path is not None:
                raise CaseFileError(exc.path, exc.message, line=exc.line) from None
            raise CaseFileError(path, exc.message, line=line, field="cases") from None


def _file_problem(exc: FileRefError) -> str:
    if exc.path is None:
        return exc.message
    where = f"{exc.path}:{exc.line}" if exc.line else str(exc.path)
    return f"{where}: {exc.message}"


@dataclass(frozen=True)
class _Prompt:
    """One entry of the file-level `prompts:` list: every case without its own prompt runs it."""

    id: str
    prompt: Any
    messages: Any
    field: str


def _prompts(path: Path, raw: Any, line: int | None) -> tuple[_Prompt, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise CaseFileError(
            path,
            "prompts must be a non-empty list of prompt texts, file://... references or {id, prompt}",
            line=line,
            field="prompts",
        )
    result: list[_Prompt] = []
    for position, entry in enumerate(raw, 1):
        where = f"prompts[{position - 1}]"
        if isinstance(entry, str) and entry.strip():
            name = datafiles.slug(Path(entry[len(FILE_PREFIX) :]).stem) if is_reference(entry) else ""
            result.append(_Prompt(name or f"prompt-{position}", entry, None, where))
            continue
        if not isinstance(entry, Mapping):
            raise CaseFileError(
                path,
                f"{where} must be prompt text, file://... or {{id, prompt}}, got {entry!r}",
                line=line,
                field="prompts",
            )
        entry_line = _line(entry, line)
        _reject_unknown(path, entry, PROMPT_KEYS, line=entry_line, case_id=None, what=f"key in {where}")
        prompt_id = entry.get("id")
        if not isinstance(prompt_id, str) or not CASE_ID.fullmatch(prompt_id):
            raise CaseFileError(
                path,
                f"{where} needs an 'id' of letters, digits, '.', '_' or '-' (got {prompt_id!r}); "
                "items are named case-id[prompt-id]",
                line=entry_line,
                field="prompts",
            )
        if ("prompt" in entry) == ("messages" in entry):
            raise CaseFileError(
                path, f"{where} needs exactly one of 'prompt' or 'messages'", line=entry_line, field="prompts"
            )
        result.append(_Prompt(prompt_id, entry.get("prompt"), entry.get("messages"), f"prompts[{prompt_id}]"))
    ids = [prompt.id for prompt in result]
    for prompt_id in ids:
        if ids.count(prompt_id) > 1:
            raise CaseFileError(
                path,
                f"two prompts get the id {prompt_id!r}; give them ids with {{id: ..., prompt: file://...}}",
                line=line,
                field="prompts",
            )
    return tuple(result)


def _case_rows(path: Path, raw: Any, files: _Files, line: int | None) -> list[Row]:
    """Inline cases and the rows of `file://` data files, in order; derived ids made unique."""
    if is_reference(raw):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise CaseFileError(
            path,
            "'cases:' must be a non-empty list of cases (or file://cases.csv, .jsonl, .json, .yaml)",
            line=line,
            hint=_EXAMPLE_HINT,
        )
    rows: list[Row] = []
    for index, entry in enumerate(raw):
        if is_reference(entry):
            loaded = files.rows(entry, path, line)
            if not loaded:
                raise CaseFileError(path, f"{entry} holds no cases", line=line, field="cases")
            rows.extend(loaded)
        elif isinstance(entry, dict):
            rows.append(Row(entry, path, _line(entry, 1) or 1, f"case #{index + 1}", derived_id=False))
        else:
            raise CaseFileError(
                path,
                f"case #{index + 1} must be a mapping with an 'id' (or file://...), got {entry!r}",
                line=line,
            )
    taken = {row.case.get("id") for row in rows if not row.derived_id}
    for row in rows:
        if row.derived_id:
            base = candidate = row.case["id"]
            number = 2
            while candidate in taken:
                candidate, number = f"{base}-{number}", number + 1
            row.case["id"] = candidate
            taken.add(candidate)
    return rows


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
                line=key_line(mapping, key) or line,
                case_id=case_id,
                field=str(key),
            )


def _parse_case(
    path: Path,
    row: Row,
    defaults: Mapping[str, Any],
    prompts: Sequence[_Prompt],
    files: _Files,
    specs: _SpecCache,
) -> list[Case]:
    """The case of one row, or one per file-level prompt when it has no prompt of its own."""
    raw = row.case
    in_data_file = row.path != path
    prefix = f"{row.label}: " if in_data_file else ""
    line = row.line
    case_id = raw.get("id")
    if not isinstance(case_id, str) or not CASE_ID.fullmatch(case_id):
        raise CaseFileError(
            row.path,
            f"{prefix}{row.label} needs an 'id' of letters, digits, '.', '_' or '-' (got {case_id!r}); "
            "it names the pytest item",
            line=line,
            field="id",
        )
    if len(case_id) > MAX_CASE_ID:
        raise CaseFileError(
            row.path,
            f"{prefix}{row.label} has an id of {len(case_id)} characters; at most {MAX_CASE_ID} "
            "(its cassettes go in a folder named after it, and file systems allow no longer name)",
            line=line,
            case_id=case_id[:40] + "...",
            field="id",
        )
    err = _ErrorFactory(row.path, line, case_id, prefix, raw)
    _reject_unknown(row.path, raw, CASE_KEYS, line=line, case_id=case_id, what=f"{prefix}key".strip())

    merged: dict[str, Any] = {}
    for key in DEFAULTABLE_KEYS:
        if key in defaults or key in raw:
            merged[key] = _merge(key, defaults.get(key), raw.get(key))
    raw_vars = merged.get("vars") or {}
    if not isinstance(raw_vars, Mapping):
        raise err("vars must be a mapping of name: value", "vars")
    variables = _vars(files, err, raw_vars)

    if "prompt" in raw and "messages" in raw:
        raise err("give exactly one of 'prompt' (text) or 'messages' (a chat list)", "prompt")
    if "prompt" in raw or "messages" in raw:
        own = "messages" if "messages" in raw else "prompt"
        variants = [_Prompt("", raw.get("prompt"), raw.get("messages"), own)]
    elif "prompt" in defaults or "messages" in defaults:
        own = "defaults.messages" if "messages" in defaults else "defaults.prompt"
        variants = [_Prompt("", defaults.get("prompt"), defaults.get("messages"), own)]
    elif prompts:
        variants = list(prompts)
    else:
        raise err(
            "give exactly one of 'prompt' (text) or 'messages' (a chat list), "
            "or a file-level prompts: list that every case runs with",
            "prompt",
        )
    system = merged.get("system")
    if system is not None and not isinstance(system, str):
        raise err("system must be text", "system")

    params = merged.get("params") or {}
    if not isinstance(params, Mapping):
        raise err("params must be a mapping of chat.completions.create arguments", "params")
    for reserved in ("model", "messages", "tools"):
        if reserved in params:
            raise err(
                f"params may not set {reserved!r}; it comes from the case and the run options", "params"
            )
    _check_param_names(err, params, "params")
    tools = _tools(err, _data_field(files, err, merged.get("tools"), variables, "tools"))
    tags = _tags(err, merged.get("tags"))
    budgets = _budgets(err, merged.get("budgets"))
    assertions = _assertions(path, err, files, merged.get("assert"), variables, line or 1, specs)
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
    threshold = merged.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1
    ):
        raise err(
            f"threshold must be a score in [0, 1] that the weighted assertions must reach, got {threshold!r}",
            "threshold",
        )
    weight = merged.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < float("inf"):
        raise err(
            f"weight must be a number > 0 (how many cases this one counts as), got {weight!r}", "weight"
        )

    cases: list[Case] = []
    for variant in variants:
        full_id = f"{case_id}[{variant.id}]" if variant.id else case_id
        if len(full_id) > MAX_CASE_ID:
            raise err(
                f"the item id {full_id[:40]!r}... has {len(full_id)} characters; at most {MAX_CASE_ID} "
                "(it names the cassette folder): shorten the case or prompt id",
                "id",
            )
        variant_err = _ErrorFactory(row.path, line, full_id, prefix, raw)
        builder = _MessageBuilder(files, variant_err, variables)
        messages = builder.build(system, variant.prompt, variant.messages, variant.field)

        def override_messages(
            override: Mapping[str, Any], builder: _MessageBuilder = builder, variant: _Prompt = variant
        ) -> list[dict[str, Any]]:
            """An override replaces the system text, the prompt or the whole message list."""
            if "messages" in override:
                prompt, chat, where = None, override["messages"], "overrides.messages"
            elif "prompt" in override:
                prompt, chat, where = override["prompt"], None, "overrides.prompt"
            else:
                prompt, chat, where = variant.prompt, variant.messages, variant.field
            return builder.build(override.get("system", system), prompt, chat, where)

        overrides = _overrides(variant_err, files, merged.get("overrides"), variables, override_messages)
        cases.append(
            Case(
                id=full_id,
                path=path,
                line=1 if in_data_file or line is None else line,
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
                threshold=None if threshold is None else float(threshold),
                weight=float(weight),
            )
        )
    return cases


def _check_param_names(err: _ErrorFactory, params: Mapping[str, Any], where: str) -> None:
    unknown = unknown_param(params, where)
    if unknown is not None:
        name, message = unknown
        raise err(message, f"{where}.{name}")


class _ErrorFactory:
    def __init__(self, path: Path, line: int | None, case_id: str, prefix: str = "", raw: Any = None) -> None:
        self.path, self.line, self.case_id, self.prefix = path, line, case_id, prefix
        self.raw = raw  # the case's own mapping: an error in one of its fields points at that key

    def __call__(self, message: str, field: str | None = None, line: int | None = None) -> CaseFileError:
        line = line or key_line(self.raw, field) or self.line
        return CaseFileError(self.path, self.prefix + message, line=line, case_id=self.case_id, field=field)


def _merge(key: str, default: Any, value: Any) -> Any:
    """Case keys win; mappings merge key by key (`overrides` model by model, and their `params`),
    `tags` and `assert` lists add to the defaults (the defaults' assertions first, as promptfoo's
    defaultTest)."""
    if default is None:
        return value
    if value is None:
        return default
    if isinstance(default, Mapping) and isinstance(value, Mapping):
        if key == "overrides":
            return {
                model: _merge("override", default.get(model), value.get(model))
                for model in {**default, **value}
            }
        if key == "override" and isinstance(default.get("params"), Mapping):
            return {**default, **value, "params": _merge("params", default["params"], value.get("params"))}
        return {**default, **value}
    if key in ("tags", "assert") and isinstance(default, list) and isinstance(value, list):
        return [*default, *(item for item in value if key != "tags" or item not in default)]
    return value


def _render(
    err: _ErrorFactory, text: str, variables: Mapping[str, Any], field: str, line: int | None = None
) -> str:
    try:
        return render(text, variables)
    except TemplateProblem as exc:
        raise err(_template_problem(exc, text), field, line) from None


def _template_problem(exc: TemplateProblem, text: str) -> str:
    if exc.line is not None and "\n" in text.strip():
        return f"{exc.message} (line {exc.line} of the template)"
    return exc.message


def _render_data(
    err: _ErrorFactory, value: Any, variables: Mapping[str, Any], field: str, line: int | None = None
) -> Any:
    try:
        return render_data(value, variables)
    except TemplateProblem as exc:
        raise err(exc.message, field, line) from None


def _vars(files: _Files, err: _ErrorFactory, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The case's vars: `file://` values read (text as written, data as data, .jinja/.j2 rendered
    with the other vars) and inline strings that use other vars rendered."""
    loaded: dict[str, Any] = {}
    templated: set[str] = set()
    for name, value in raw.items():
        if is_reference(value):
            content = files.load(value, err, f"vars.{name}")
            loaded[str(name)] = content.value
            if content.kind == "template":
                templated.add(str(name))
        else:
            loaded[str(name)] = value
            if isinstance(value, str):
                templated.add(str(name))
    try:
        return resolve_vars(loaded, templated)
    except TemplateProblem as exc:
        raise err(exc.message, "vars") from None


def _data_field(
    files: _Files, err: _ErrorFactory, value: Any, variables: Mapping[str, Any], field: str
) -> Any:
    """A field that holds data (tools, an override's tools): a reference read, every string rendered."""
    if is_reference(value):
        value = files.load(value, err, field).value
    return _render_data(err, value, variables, field)


class _MessageBuilder:
    """The messages of one case and prompt: references read, every text part rendered."""

    def __init__(self, files: _Files, err: _ErrorFactory, variables: Mapping[str, Any]) -> None:
        self.files, self.err, self.variables = files, err, variables

    def text(self, value: Any, field: str, line: int | None = None) -> Any:
        """A text value: a reference read (data stays data), text rendered as a template."""
        if is_reference(value):
            loaded = self.files.load(value, self.err, field, line)
            if loaded.kind == "data":
                return loaded.value
            value = loaded.value
        if isinstance(value, str):
            return _render(self.err, value, self.variables, field, line)
        return value

    def build(self, system: Any, prompt: Any, messages: Any, field: str) -> list[dict[str, Any]]:
        err = self.err
        result: list[dict[str, Any]] = []
        if system is not None:
            system_text = self.text(system, "system")
            if not isinstance(system_text, str):
                raise err(
                    "system must be text (a file:// system prompt must be .txt, .md or .jinja)", "system"
                )
            result.append({"role": "system", "content": system_text})
        if prompt is not None:
            content = self.text(prompt, field)
            if isinstance(content, list):  # a chat prompt file (promptfoo's JSON prompts)
                return result + self._messages(content, field)
            if not isinstance(content, str) or not content.strip():
                raise err("prompt must be non-empty text", field)
            result.append({"role": "user", "content": content})
            return result
        if is_reference(messages):
            messages = self.files.load(messages, err, field).value
        return result + self._messages(messages, field)

    def _messages(self, messages: Any, field: str) -> list[dict[str, Any]]:
        err = self.err
        if not isinstance(messages, list) or not messages:
            raise err("messages must be a non-empty list of {role, content}", field)
        result: list[dict[str, Any]] = []
        for position, message in enumerate(messages):
            line = _line(message, None)
            if not isinstance(message, Mapping) or "role" not in message:
                raise err(f"messages[{position}] must be a mapping with 'role' and 'content'", field, line)
            if message["role"] not in MESSAGE_ROLES:
                raise err(
                    f"messages[{position}] has role {message['role']!r}; "
                    f"use one of {', '.join(MESSAGE_ROLES)}",
                    field,
                    line,
                )
            rendered = dict(message)
            content = message.get("content")
            where = f"{field}.messages[{position}]" if field != "messages" else f"messages[{position}]"
            if isinstance(content, str):
                rendered["content"] = self.text(content, where, line)
                if not isinstance(rendered["content"], str):
                    raise err(f"{where}: a file:// content must be text, not data", where, line)
            elif isinstance(content, list):  # content parts: every text (and URL) rendered
                rendered["content"] = _render_data(err, content, self.variables, where, line)
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
    err: _ErrorFactory,
    files: _Files,
    raw: Any,
    variables: Mapping[str, Any],
    build_messages: Callable[[Mapping[str, Any]], list[dict[str, Any]]],
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
            _check_param_names(err, override["params"], f"overrides.{model}.params")
            resolved["params"] = dict(override["params"])
        if "tools" in override:
            resolved["tools"] = _tools(
                err, _data_field(files, err, override["tools"], variables, f"overrides.{model}.tools")
            )
        if any(key in override for key in ("system", "prompt", "messages")):
            resolved["messages"] = build_messages(override)
        result[str(model)] = resolved
    return result


def _assertions(
    path: Path,
    err: _ErrorFactory,
    files: _Files,
    raw: Any,
    variables: Mapping[str, Any],
    case_line: int,
    specs: _SpecCache,
) -> tuple[AssertionSpec, ...]:
    if raw is None:
        return ()
    if is_reference(raw):
        raw = files.load(raw, err, "assert").value
    if not isinstance(raw, list):
        raise err("assert must be a list of assertions like {type: contains, value: ...}", "assert")
    result: list[AssertionSpec] = []
    for position, entry in enumerate(raw):
        line = _line(entry, case_line)
        key = _spec_key(entry)
        spec = specs.get(key) if key is not None else None
        if spec is None:
            if isinstance(entry, Mapping):
                entry = _assertion_entry(err, files, entry, variables, f"assert[{position}]", line)
            try:
                spec = parse_assertion(entry, base_dir=path.parent)
            except AssertionConfigError as exc:
                field_name = f"assert[{position}]" + (f".{exc.field}" if exc.field else "")
                raise err(exc.message, field_name, line) from exc
            if key is not None:
                specs[key] = spec
        result.append(spec)
    return tuple(result)


_SpecCache = dict[tuple[tuple[str, type, Any], ...], AssertionSpec]
_SCALAR_TYPES = (str, int, float, bool, type(None))


def _spec_key(entry: Any) -> tuple[tuple[str, type, Any], ...] | None:
    """What identifies an entry whose spec may be shared by every case that has the same entry
    (a suite of 2,000 cases repeats a handful, often from defaults): text keys and immutable
    scalar values, types included (`1`, `1.0` and `true` are equal but configure differently),
    and no text that rendering or a file would change, so the entry is the same in every case.
    None: render and parse it anew, as templates, `file://` values, mappings and lists as values
    and code kinds (`python` loads a module per entry) are."""
    if not isinstance(entry, dict):
        return None
    key = []
    for name, value in entry.items():
        kind = type(value)
        if type(name) is not str or kind not in _SCALAR_TYPES:
            return None
        if kind is str and (is_template(value) or is_reference(value)):
            return None
        key.append((name, kind, value))
    raw_type = entry.get("type")
    if not isinstance(raw_type, str) or raw_type.removeprefix("not-") in CODE_KINDS:
        return None
    return tuple(key)


def _assertion_entry(
    err: _ErrorFactory,
    files: _Files,
    entry: Mapping[str, Any],
    variables: Mapping[str, Any],
    where: str,
    line: int | None,
) -> dict[str, Any]:
    """Every field but `type` with its `file://` read and its strings rendered with the case's vars
    (the expected text, a rubric, a schema, expected fields), except the code of CODE_KINDS."""
    raw_type = entry.get("type")
    kind = raw_type.removeprefix("not-") if isinstance(raw_type, str) else None
    result: dict[str, Any] = {}
    for key, value in entry.items():
        field = f"{where}.{key}"
        if key == "type" or (kind == "python" and key == "value"):
            result[key] = value
            continue
        if is_reference(value):
            value = files.load(value, err, field, line).value
        result[key] = value if kind in CODE_KINDS else _render_data(err, value, variables, field, line)
    return result


def _param_policy(path: Path, raw: Any) -> str | None:
    if raw is None or raw in PARAM_POLICIES:
        return raw  # type: ignore[no-any-return]
    raise CaseFileError(
        path, f"param_policy must be one of {', '.join(PARAM_POLICIES)}, got {raw!r}", field="param_policy"
    )
