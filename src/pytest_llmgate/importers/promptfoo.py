"""`llmgate import promptfoo`: a promptfoo suite (promptfooconfig.yaml) as a runnable case file.

A migration must not lose a check without saying so: every part of the suite that has no
equivalent here (a JavaScript assertion, a transform, a provider that does not speak the OpenAI
protocol, an unknown kind) is listed in the summary and written as a `# not converted: ...`
comment at the place it had, so the reviewer sees the gap where it is. Each converted case is
validated with the parser pytest collects with; an assertion or case that would not collect is
commented out the same way instead, so the written file always collects. Kinds that other parts
of the project may add later (graders, named metrics, case thresholds) are looked up in the live
registry, so the importer converts them as soon as they exist.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import itertools
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_llmgate.cassettes import display_path
from pytest_llmgate.datafiles import FILE_PREFIX, csv_threshold, parse_expected, slug
from pytest_llmgate.errors import CaseFileError

CASE_DATA_SUFFIXES = (".csv", ".json", ".jsonl", ".yaml", ".yml")
# Request parameters a promptfoo OpenAI provider's `config` may carry that mean the same here.
PARAM_KEYS = frozenset(
    {
        "temperature", "max_tokens", "max_completion_tokens", "top_p", "frequency_penalty",
        "presence_penalty", "stop", "seed", "response_format", "reasoning_effort", "tool_choice",
        "parallel_tool_calls", "logprobs", "top_logprobs", "logit_bias", "n", "user", "metadata",
        "store", "service_tier", "verbosity", "modalities", "prediction",
    }
)  # fmt: skip
# promptfoo provider prefixes that speak the OpenAI protocol: (base_url, key variable).
COMPATIBLE: Mapping[str, tuple[str, str | None]] = {
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "togetherai": ("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "deepseek": ("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "fireworks": ("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "xai": ("https://api.x.ai/v1", "XAI_API_KEY"),
    "perplexity": ("https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
    "ollama": ("http://localhost:11434/v1", None),
    "localai": ("http://localhost:8080/v1", None),
}
AZURE_PREFIXES = ("azure", "azureopenai")
DEFAULT_AZURE_VERSION = "2024-10-21"
JAVASCRIPT_KINDS = ("javascript", "fn", "eval")
# promptfoo's word for a kind that has another name here.
KIND_ALIASES = {"is-refusal": "refusal", "model-graded-factuality": "factuality"}
BUDGET_KINDS = {"latency": "latency_ms", "cost": "cost_usd"}
PYTHON_SUFFIXES = (".py",)
MAX_SHOWN = 60  # characters of a value quoted in a note


class PromptfooError(Exception):
    """The suite cannot be read at all (missing file, not YAML, no tests): nothing is written."""


@dataclass(frozen=True)
class NotConverted:
    """One part of the suite left out, where it was, and what to do about it."""

    where: str
    what: str
    why: str

    def comment(self) -> str:
        return _one_line(f"not converted: {self.what} ({self.why})")

    def __str__(self) -> str:
        return _one_line(f"{self.where}: {self.what} ({self.why})")


@dataclass(frozen=True)
class PromptfooOptions:
    config: Path
    output: Path  # a folder (the file is named after the suite) or an llm_*.yaml path
    project_file: Path | None = None  # write the targets to this llmgate.yaml instead of the case file
    force: bool = False


@dataclass
class PromptfooReport:
    cases: int = 0
    prompts: int = 0
    baseline: str | None = None
    targets: list[str] = field(default_factory=list)
    not_converted: list[NotConverted] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    error: str | None = None

    def lines(self) -> list[str]:
        lines = [f"not converted: {item}" for item in self.not_converted]
        if self.error:
            lines.append(f"error: {self.error}")
            return lines
        lines.append(
            f"llmgate import promptfoo: {self.cases} case(s), {self.prompts} prompt(s), "
            f"{len(self.targets)} target(s), {len(self.not_converted)} part(s) not converted"
        )
        if self.written:
            lines.append("wrote " + ", ".join(display_path(path) for path in self.written))
            case_file = display_path(self.written[0])
            candidates = [name for name in self.targets if name != self.baseline]
            candidate = candidates[0] if candidates else "MODEL"
            baseline = "" if self.baseline else " --llm-baseline=MODEL"
            lines.append(
                f"next: pytest {case_file}{baseline} --llm-candidate={candidate} --llm-record-mode=once"
            )
        if self.not_converted:
            lines.append("each part not converted is a '# not converted:' comment in the file, at its place")
        return lines


# -- the parts of the suite ----------------------------------------------------------------------


@dataclass
class Item:
    """An entry of a YAML list to write, with the comments above it; `value` None: comments only."""

    value: Any = None
    comments: list[str] = field(default_factory=list)
    present: bool = True


@dataclass
class Block:
    """A mapping to write (the defaults, or one case) with its notes and its assertion list."""

    keys: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    asserts: list[Item] = field(default_factory=list)
    where: str = ""
    reference: str | None = None  # a `- file://cases.csv` entry instead of a mapping
    dropped: str | None = None  # why the whole case is commented out
    fallback: Callable[[], list[Block]] | None = None  # the reference's rows inline, if it fails


class _Suite:
    """The conversion of one config: state shared by the parts (paths, notes, budgets)."""

    def __init__(self, config: Path, output_dir: Path) -> None:
        self.config = config
        self.base = config.resolve().parent
        self.output_dir = output_dir
        self.notes: list[NotConverted] = []

    def skip(self, where: str, what: str, why: str) -> str:
        note = NotConverted(where, what, why)
        self.notes.append(note)
        return note.comment()

    def path(self, reference: str) -> Path:
        raw = reference[len(FILE_PREFIX) :] if reference.startswith(FILE_PREFIX) else reference
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.base / path

    def rebase(self, reference: str) -> str:
        """A `file://` reference of the config, made relative to the case file's folder."""
        raw = reference[len(FILE_PREFIX) :]
        suffix = ""
        match = re.match(r"^(.*\.py)(:[A-Za-z_][A-Za-z0-9_.]*)$", raw)
        if match:
            raw, suffix = match.group(1), match.group(2)
        relative = os.path.relpath(self.path(FILE_PREFIX + raw).resolve(), self.output_dir.resolve())
        return FILE_PREFIX + Path(relative).as_posix() + suffix

    def load_data(self, reference: str) -> Any:
        path = self.path(reference)
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".json":
            return json.loads(text)
        if path.suffix.lower() == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return yaml.safe_load(text)

    # -- values -------------------------------------------------------------------------------

    def value(self, value: Any, where: str) -> tuple[Any, str | None]:
        """A var or assertion value with its `file://` rebased; (None, note) when it cannot be."""
        if isinstance(value, str) and value.startswith(FILE_PREFIX):
            target = (
                value[len(FILE_PREFIX) :].split(":", 1)[0] if ".py:" in value else value[len(FILE_PREFIX) :]
            )
            suffix = Path(target).suffix.lower()
            if suffix in (".js", ".mjs", ".cjs", ".ts"):
                return None, self.skip(where, value, "a JavaScript file does not run here; port it to Python")
            if suffix == ".py" and not where.endswith(".value"):
                return None, self.skip(where, value, "a var computed by a Python script is not supported")
            if any(char in target for char in "*?["):
                return None, self.skip(where, value, "a glob cannot be a single value; list the files")
            if not self.path(FILE_PREFIX + target).is_file():
                return None, self.skip(where, value, f"no such file {self.path(FILE_PREFIX + target)}")
            return self.rebase(value), None
        if isinstance(value, Mapping):
            result: dict[str, Any] = {}
            for key, item in value.items():
                converted, note = self.value(item, f"{where}.{key}")
                if note is not None:
                    return None, note
                result[str(key)] = converted
            return result, None
        if isinstance(value, list):
            items: list[Any] = []
            for index, item in enumerate(value):
                converted, note = self.value(item, f"{where}[{index}]")
                if note is not None:
                    return None, note
                items.append(converted)
            return items, None
        return value, None

    def variables(self, raw: Any, where: str, notes: list[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if isinstance(raw, str) and raw.startswith(FILE_PREFIX):
            try:
                raw = self.load_data(raw)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                notes.append(self.skip(where, raw, f"cannot read it: {exc}"))
                return {}
        if not isinstance(raw, Mapping):
            notes.append(self.skip(where, _shown(raw), "vars must be a mapping"))
            return {}
        result: dict[str, Any] = {}
        for name, value in raw.items():
            converted, note = self.value(value, f"{where}.{name}")
            if note is not None:
                notes.append(note)
            else:
                result[str(name)] = converted
        return result

    # -- assertions ---------------------------------------------------------------------------

    def assertion(self, raw: Any, where: str, budgets: dict[str, float]) -> Item:
        """One promptfoo assertion as an `assert:` entry, a budget, or a commented gap."""
        from pytest_llmgate.assertions import REGISTRY, load_kinds
        from pytest_llmgate.assertions.base import COMMON_FIELDS

        load_kinds()
        if isinstance(raw, str):
            return self.expected(raw, where)
        if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
            return Item(None, [self.skip(where, _shown(raw), "an assertion needs a type")], present=False)
        raw_type: str = raw["type"]
        negate = raw_type.startswith("not-")
        base = KIND_ALIASES.get(raw_type.removeprefix("not-"), raw_type.removeprefix("not-"))
        shown = f"{raw_type}" + (f": {_shown(raw.get('value'))}" if raw.get("value") is not None else "")
        if base in JAVASCRIPT_KINDS:
            why = (
                "JavaScript does not run here; port it to Python: {type: python, value: file://checks.py:fn}"
            )
            return Item(None, [self.skip(where, shown, why)], present=False)
        if raw.get("transform") is not None:
            why = "its transform changes the text it judges; port the transform into a python assertion"
            return Item(None, [self.skip(where, shown, why)], present=False)
        if base in BUDGET_KINDS and not negate:
            threshold = raw.get("threshold")
            if isinstance(threshold, int | float) and not isinstance(threshold, bool):
                key = BUDGET_KINDS[base]
                budgets[key] = min(float(threshold), budgets.get(key, float("inf")))
                return Item(None, [f"{raw_type} {threshold}: converted to budgets.{key}"], present=False)
        comments: list[str] = []
        if base == "python":
            value = raw.get("value")
            if not isinstance(value, str) or not value.startswith(FILE_PREFIX):
                why = "inline Python expressions are not supported; move it into file://checks.py:fn"
                return Item(None, [self.skip(where, shown, why)], present=False)
        if base not in REGISTRY:
            why = (
                "a grader not available in this version"
                if base in ("factuality", "model-graded-closedqa", "g-eval", "pairwise", "select-best")
                else "no such assertion kind here (see README 'Assertions')"
            )
            return Item(None, [self.skip(where, shown, why)], present=False)
        entry: dict[str, Any] = {"type": ("not-" if negate else "") + base}
        fields = REGISTRY[base].fields
        for key, value in raw.items():
            if key == "type":
                continue
            if base == "word-count" and key == "value" and isinstance(value, Mapping):
                entry.update({k: v for k, v in value.items() if k in ("min", "max")})
                continue
            if (
                key in ("value", "threshold", "weight")
                or key in fields
                or (key == "metric" and key in COMMON_FIELDS)
            ):
                converted, note = self.value(value, f"{where}.{key}")
                if note is not None:
                    return Item(None, [note], present=False)
                entry[key] = converted
            elif key == "metric":
                comments.append(
                    self.skip(f"{where}.metric", f"metric: {value}", "named metrics are not supported yet")
                )
            elif key in ("provider", "rubricPrompt"):
                comments.append(
                    self.skip(
                        f"{where}.{key}",
                        f"{key} of {raw_type}",
                        "the judge is --llm-judge, with its own prompt",
                    )
                )
            else:
                comments.append(
                    self.skip(f"{where}.{key}", f"{key}: {_shown(value)}", f"{raw_type} takes no {key} here")
                )
        if base == "similar":
            comments.append(
                "similar here is string similarity (difflib), not embeddings: review the threshold"
            )
        return Item(entry, comments)

    def expected(self, text: str, where: str) -> Item:
        """A promptfoo assertion string (a CSV `__expected` cell) as an entry, or a gap."""
        try:
            entry = parse_expected(text)
        except ValueError as exc:
            return Item(None, [self.skip(where, _shown(text), str(exc))], present=False)
        if entry is None:
            return Item(None, [], present=False)
        if entry["type"].removeprefix("not-") == "python" and isinstance(entry.get("value"), str):
            value = entry["value"]
            if not value.startswith(FILE_PREFIX):
                value = FILE_PREFIX + value
            entry["value"] = self.rebase(value)
        return Item(entry)


# -- prompts -------------------------------------------------------------------------------------


def _prompt_items(suite: _Suite, raw: Any) -> list[Item]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, Mapping):  # {file://prompt.txt: label}, promptfoo's older form
        raw = [{"id": key, "label": value} for key, value in raw.items()]
    if not isinstance(raw, list):
        return [Item(None, [suite.skip("prompts", _shown(raw), "prompts must be a list")], present=False)]
    items: list[Item] = []
    for index, entry in enumerate(raw):
        where = f"prompts[{index}]"
        label: str | None = None
        if isinstance(entry, Mapping):
            label = entry.get("label") if isinstance(entry.get("label"), str) else None
            text = entry.get("raw", entry.get("id"))
            extra = sorted(set(entry) - {"id", "label", "raw"})
            if extra:
                items.append(
                    Item(
                        None,
                        [
                            suite.skip(
                                where, f"{', '.join(extra)} of a prompt", "prompt options are not supported"
                            )
                        ],
                        present=False,
                    )
                )
        else:
            text = entry
        if not isinstance(text, str) or not text.strip():
            items.append(
                Item(
                    None,
                    [suite.skip(where, _shown(entry), "a prompt must be text or file://")],
                    present=False,
                )
            )
            continue
        items.extend(_prompt(suite, text, label, where, f"prompt-{index + 1}"))
    return items


def _prompt(suite: _Suite, text: str, label: str | None, where: str, position: str) -> list[Item]:
    prompt_id = slug(label) if label else None
    if not text.startswith(FILE_PREFIX):
        chat = _chat(text)
        return [_prompt_entry(prompt_id or (position if chat else None), chat or text)]
    target = text[len(FILE_PREFIX) :]
    if ":" in target or Path(target).suffix.lower() in (".js", ".mjs", ".cjs", ".ts", ".py"):
        return [
            Item(
                None,
                [
                    suite.skip(
                        where, text, "a prompt function does not run here; write its output as a prompt"
                    )
                ],
                present=False,
            )
        ]
    paths = (
        sorted(glob.glob(str(suite.path(text))))
        if any(c in target for c in "*?[")
        else [str(suite.path(text))]
    )
    if not paths or not all(Path(path).is_file() for path in paths):
        return [Item(None, [suite.skip(where, text, "no such file")], present=False)]
    items: list[Item] = []
    for path_text in paths:
        path = Path(path_text)
        if path.suffix.lower() in (".txt", ".md", ".jinja", ".j2", ""):
            body = path.read_text(encoding="utf-8-sig")
            parts = [part.strip() for part in re.split(r"^---$", body, flags=re.M)]
            if len([part for part in parts if part]) > 1:  # promptfoo: several prompts in one file
                stem = slug(path.stem) or "prompt"
                for number, part in enumerate((part for part in parts if part), 1):
                    items.append(_prompt_entry(f"{stem}-{number}", part))
                continue
        reference = suite.rebase(FILE_PREFIX + path_text)
        items.append(_prompt_entry(prompt_id if len(paths) == 1 else None, reference))
    return items


def _prompt_entry(prompt_id: str | None, prompt: Any) -> Item:
    if isinstance(prompt, list):
        return Item({"id": prompt_id, "messages": prompt})
    return Item({"id": prompt_id, "prompt": prompt} if prompt_id else prompt)


def _chat(text: str) -> list[dict[str, Any]] | None:
    """A prompt written as a JSON chat list (`[{"role": "system", ...}]`), as messages."""
    if not text.lstrip().startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return value
    return None


# -- providers -----------------------------------------------------------------------------------


@dataclass
class Provider:
    name: str
    target: dict[str, Any]
    tools: Any = None


def _providers(suite: _Suite, raw: Any) -> tuple[list[Provider], list[str]]:
    if raw is None:
        return [], []
    if isinstance(raw, str | Mapping):
        raw = [raw]
    providers: list[Provider] = []
    notes: list[str] = []
    if not isinstance(raw, list):
        return [], [suite.skip("providers", _shown(raw), "providers must be a list")]
    for index, entry in enumerate(raw):
        where = f"providers[{index}]"
        if isinstance(entry, Mapping) and "id" not in entry and len(entry) == 1:
            ((key, value),) = entry.items()  # {openai:gpt-4o: {config: ...}}
            entry = {"id": key, **(value if isinstance(value, Mapping) else {})}
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            notes.append(
                suite.skip(where, _shown(entry), "a provider needs an id such as openai:chat:gpt-4o")
            )
            continue
        provider = _provider(suite, entry, where, notes, {p.name for p in providers})
        if provider is not None:
            providers.append(provider)
    return providers, notes


def _provider(
    suite: _Suite, entry: Mapping[str, Any], where: str, notes: list[str], taken: set[str]
) -> Provider | None:
    provider_id: str = entry["id"]
    prefix, _, rest = provider_id.partition(":")
    api = "chat"
    first, _, model = rest.partition(":")
    if prefix == "openai" or prefix in AZURE_PREFIXES:
        if first in ("chat", "responses"):
            api = first
        elif first in (
            "completion",
            "embedding",
            "embeddings",
            "assistant",
            "realtime",
            "image",
            "moderation",
        ):
            notes.append(suite.skip(where, provider_id, f"the {first} API is not a chat model"))
            return None
        else:
            model = rest
    elif prefix in COMPATIBLE:
        if prefix == "ollama" and first in ("completion", "embeddings", "embedding"):
            notes.append(suite.skip(where, provider_id, f"the {first} API is not a chat model"))
            return None
        model = model if first == "chat" else rest
    else:
        why = (
            "not an OpenAI-compatible provider; serve the model behind an OpenAI-compatible "
            "proxy (e.g. LiteLLM) and declare it under models:"
        )
        notes.append(suite.skip(where, provider_id, why))
        return None
    if not model:
        notes.append(suite.skip(where, provider_id, "it names no model"))
        return None
    config = entry.get("config") or {}
    if not isinstance(config, Mapping):
        config = {}
    target: dict[str, Any] = {}
    label = entry.get("label")
    name = _target_name(
        label if isinstance(label, str) and label.strip() else model.rsplit("/", 1)[-1], prefix, taken
    )
    if name != model:
        target["model"] = model
    if prefix in COMPATIBLE:
        base_url, key_env = COMPATIBLE[prefix]
        target["base_url"] = base_url
        if key_env:
            target["api_key_env"] = key_env
    if prefix in AZURE_PREFIXES:
        target.pop("model", None)
        target["api_key_env"] = "AZURE_API_KEY"
        target["azure"] = {
            "deployment": model,
            "api_version": str(config.get("apiVersion") or DEFAULT_AZURE_VERSION),
        }
        if not (config.get("apiHost") or config.get("apiBaseUrl")):
            notes.append(
                suite.skip(
                    f"{where}.config.apiHost",
                    "the Azure host (promptfoo reads $AZURE_API_HOST)",
                    f"set models.{name}.base_url: https://<resource>.openai.azure.com",
                )
            )
    if api == "responses":
        target["api"] = "responses"
    params: dict[str, Any] = {}
    tools: Any = None
    for key, value in config.items():
        here = f"{where}.config.{key}"
        if key in PARAM_KEYS:
            if isinstance(value, str) and value.startswith(FILE_PREFIX):
                try:
                    value = suite.load_data(value)
                except (OSError, ValueError, yaml.YAMLError) as exc:
                    notes.append(suite.skip(here, str(value), f"cannot read it: {exc}"))
                    continue
            params[key] = value
        elif key == "passthrough" and isinstance(value, Mapping):
            params.update(value)
        elif key == "tools":
            if isinstance(value, str) and value.startswith(FILE_PREFIX):
                tools = suite.rebase(value)
            else:
                tools = value
        elif key in ("apiBaseUrl", "apiHost"):
            url = str(value)
            if "://" not in url:
                url = f"https://{url}" + ("" if prefix in AZURE_PREFIXES else "/v1")
            target["base_url"] = url
        elif key == "apiKeyEnvar":
            target["api_key_env"] = str(value)
        elif key == "apiKey":
            notes.append(
                suite.skip(
                    here,
                    "apiKey (value not shown)",
                    f"a key never goes into a file; export it and set models.{name}.api_key_env",
                )
            )
        elif key == "apiVersion" and prefix in AZURE_PREFIXES:
            continue
        elif key == "headers" and isinstance(value, Mapping):
            kept = {}
            for header, header_value in value.items():
                if str(header).lower() in (
                    "authorization",
                    "api-key",
                    "x-api-key",
                    "cookie",
                    "openai-organization",
                ):
                    notes.append(
                        suite.skip(
                            f"{here}.{header}",
                            f"header {header} (value not shown)",
                            "credentials come from api_key_env only",
                        )
                    )
                else:
                    kept[str(header)] = header_value
            if kept:
                target["headers"] = kept
        else:
            notes.append(suite.skip(here, f"{key}: {_shown(value)}", "no equivalent provider setting here"))
    for key in sorted(set(entry) - {"id", "label", "config"}):
        notes.append(
            suite.skip(
                f"{where}.{key}", f"{key}: {_shown(entry[key])}", "no equivalent provider setting here"
            )
        )
    if params:
        target["params"] = params
    return Provider(name, target, tools)


def _target_name(text: str, prefix: str, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9._:-]+", "-", text).strip("-") or prefix
    candidate = name
    number = 2
    while candidate in taken:
        candidate = f"{prefix}-{name}" if number == 2 else f"{prefix}-{name}-{number}"
        number += 1
    return candidate


# -- tests ---------------------------------------------------------------------------------------


def _test_block(suite: _Suite, raw: Any, where: str, case_id: str) -> Block:
    """One promptfoo test (inline, or a row of a data file) as a case block."""
    block = Block(where=where)
    if not isinstance(raw, Mapping):
        block.dropped = suite.skip(where, _shown(raw), "a test must be a mapping with vars and assert")
        return block
    block.keys["id"] = case_id
    description = raw.get("description")
    if isinstance(description, str) and description.strip():
        block.keys["description"] = description.strip()
    variables = suite.variables(raw.get("vars"), f"{where}.vars", block.notes)
    if variables:
        block.keys["vars"] = variables
    _fill(suite, block, raw, where, ("description", "vars", "id"))
    return block


def _fill(suite: _Suite, block: Block, raw: Mapping[str, Any], where: str, handled: Sequence[str]) -> None:
    """The keys a test and defaultTest share: assert, threshold, options, metadata."""
    from pytest_llmgate.cases import CASE_KEYS, DEFAULTS_KEYS

    allowed = DEFAULTS_KEYS if where == "defaultTest" else CASE_KEYS
    budgets: dict[str, float] = {}
    asserts = raw.get("assert")
    if isinstance(asserts, str) and asserts.startswith(FILE_PREFIX):
        try:
            asserts = suite.load_data(asserts)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            block.notes.append(suite.skip(f"{where}.assert", asserts, f"cannot read it: {exc}"))
            asserts = None
    if asserts is not None and not isinstance(asserts, list):
        block.notes.append(suite.skip(f"{where}.assert", _shown(asserts), "assert must be a list"))
        asserts = None
    for index, entry in enumerate(asserts or []):
        block.asserts.append(suite.assertion(entry, f"{where}.assert[{index}]", budgets))
    if budgets:
        block.keys["budgets"] = budgets
    threshold = raw.get("threshold")
    if threshold is not None:
        if "threshold" in allowed:
            block.keys["threshold"] = threshold
        else:
            block.notes.append(
                suite.skip(
                    f"{where}.threshold",
                    f"threshold: {threshold}",
                    "case score thresholds are not supported yet; a case passes when every assertion does",
                )
            )
    options = raw.get("options")
    if isinstance(options, Mapping):
        for key, value in options.items():
            why = (
                "a transform changes the text every assertion judges; port it into a python assertion"
                if key in ("transform", "postprocess")
                else "the judge is --llm-judge"
                if key in ("provider", "rubricPrompt")
                else "no equivalent option here"
            )
            block.notes.append(suite.skip(f"{where}.options.{key}", f"options.{key}: {_shown(value)}", why))
    for key in raw:
        if key not in (*handled, "assert", "threshold", "options"):
            block.notes.append(
                suite.skip(f"{where}.{key}", f"{key}: {_shown(raw[key])}", "no equivalent key in a case file")
            )


def _expand(variables: Mapping[str, Any]) -> list[dict[str, Any]]:
    """promptfoo runs a test once per combination of its list-valued vars."""
    names = [name for name, value in variables.items() if isinstance(value, list)]
    if not names:
        return [dict(variables)]
    combos = itertools.product(*(variables[name] for name in names))
    return [{**variables, **dict(zip(names, combo, strict=True))} for combo in combos]


class _Ids:
    def __init__(self) -> None:
        self.taken: set[str] = set()

    def make(self, text: Any, fallback: str) -> str:
        base = slug(text) or fallback
        candidate, number = base, 2
        while candidate in self.taken:
            candidate, number = f"{base}-{number}", number + 1
        self.taken.add(candidate)
        return candidate


def _tests(suite: _Suite, raw: Any, ids: _Ids) -> list[Block]:
    if raw is None:
        return []
    if isinstance(raw, str | Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        return [Block(where="tests", dropped=suite.skip("tests", _shown(raw), "tests must be a list"))]
    blocks: list[Block] = []
    for index, entry in enumerate(raw):
        where = f"tests[{index}]"
        if isinstance(entry, str):
            blocks.extend(_test_file(suite, entry, where, ids))
            continue
        variables = entry.get("vars") if isinstance(entry, Mapping) else None
        expanded = _expand(variables) if isinstance(variables, Mapping) else [variables]
        for number, combo in enumerate(expanded, 1):
            test = dict(entry) if isinstance(entry, Mapping) else entry
            if isinstance(test, dict) and combo is not None:
                test["vars"] = combo
            description = test.get("description") if isinstance(test, Mapping) else None
            fallback = f"test-{index + 1}" + (f"-{number}" if len(expanded) > 1 else "")
            case_id = ids.make(
                f"{description}-{number}" if description and len(expanded) > 1 else description, fallback
            )
            blocks.append(_test_block(suite, test, where, case_id))
    return blocks


def _test_file(suite: _Suite, reference: str, where: str, ids: _Ids) -> list[Block]:
    if not reference.startswith(FILE_PREFIX):
        why = "only file:// test files are read (not sheets, URLs or datasets); export them to CSV"
        return [Block(where=where, dropped=suite.skip(where, reference, why))]
    pattern = suite.path(reference)
    paths = sorted(glob.glob(str(pattern))) if any(c in str(pattern) for c in "*?[") else [str(pattern)]
    blocks: list[Block] = []
    for path_text in paths:
        path = Path(path_text)
        suffix = path.suffix.lower()
        if suffix not in CASE_DATA_SUFFIXES or not path.is_file():
            why = (
                "no such file"
                if not path.is_file()
                else f"tests are read from {', '.join(CASE_DATA_SUFFIXES)}"
            )
            blocks.append(Block(where=where, dropped=suite.skip(where, f"file://{path_text}", why)))
            continue
        if suffix == ".csv":
            blocks.extend(_csv(suite, path, where, ids))
            continue
        try:
            data = suite.load_data(FILE_PREFIX + path_text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            blocks.append(Block(where=where, dropped=suite.skip(where, path_text, f"cannot read it: {exc}")))
            continue
        if isinstance(data, Mapping):
            data = data.get("tests", [data])
        for number, test in enumerate(data if isinstance(data, list) else [data], 1):
            description = test.get("description") if isinstance(test, Mapping) else None
            case_id = ids.make(description, f"{slug(path.stem) or 'tests'}-{number}")
            blocks.append(_test_block(suite, test, f"{path.name} item {number}", case_id))
    return blocks


def _csv(suite: _Suite, path: Path, where: str, ids: _Ids) -> list[Block]:
    """A CSV kept as `- file://tests.csv` when the case-file loader reads it as promptfoo does,
    else its rows inline, each unconvertible cell a note."""
    reference = Block(where=where, reference=suite.rebase(FILE_PREFIX + str(path)))
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return [Block(where=where, dropped=suite.skip(where, path.name, "the CSV file is empty"))]
    header = [name.strip() for name in rows[0]]
    clean = all(
        not name.startswith("__")
        or re.fullmatch(r"__expected\d*|__description|__threshold|__metric|__metadata:tags?", name)
        for name in header
    )
    for row in rows[1:]:
        for name, cell in zip(header, row, strict=False):
            if name.startswith("__expected") and cell.strip():
                try:
                    parse_expected(cell)
                except ValueError:
                    clean = False
            elif name == "__threshold" and cell.strip() and csv_threshold(cell) is None:
                clean = False
    if clean:
        reference.fallback = lambda: _csv_rows(suite, path, header, rows, ids)
        return [reference]
    return _csv_rows(suite, path, header, rows, ids)


def _csv_rows(suite: _Suite, path: Path, header: list[str], rows: list[list[str]], ids: _Ids) -> list[Block]:
    blocks: list[Block] = []
    for number, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        cells = dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))
        label = f"{path.name} row {number}"
        description = cells.get("__description", "").strip()
        block = Block(where=label)
        block.keys["id"] = ids.make(description, f"{slug(path.stem) or 'tests'}-{number}")
        if description:
            block.keys["description"] = description
        variables = {name: value for name, value in cells.items() if not name.startswith("__")}
        if variables:
            block.keys["vars"] = variables
        metric: str | None = None
        for name, value in cells.items():
            if name.startswith("__expected"):
                item = suite.expected(value, f"{label}.{name}")
                if item.present or item.comments:
                    block.asserts.append(item)
            elif name.startswith("__metadata:tag"):
                tags = [tag.strip() for tag in value.split(",") if tag.strip()]
                if tags:
                    block.keys["tags"] = tags
            elif name == "__threshold" and value.strip():
                threshold = csv_threshold(value)
                if threshold is not None:
                    block.keys["threshold"] = threshold
                else:
                    block.notes.append(
                        suite.skip(f"{label}.{name}", f"{name}: {_shown(value)}", "not a score from 0 to 1")
                    )
            elif name == "__metric":
                metric = value.strip() or None
            elif name.startswith("__") and name != "__description" and value.strip():
                block.notes.append(
                    suite.skip(f"{label}.{name}", f"{name}: {_shown(value)}", "no equivalent column here")
                )
        if metric is not None:  # the row's assertions, whichever columns come first
            for item in block.asserts:
                if isinstance(item.value, dict):
                    item.value.setdefault("metric", metric)
        blocks.append(block)
    return blocks


# -- rendering -----------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = _one_line(text)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _dump(value: Any) -> list[str]:
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return text.rstrip("\n").split("\n")


def _list_item(value: Any, indent: int) -> list[str]:
    # Dumped inside a list: a lone scalar would end with YAML's `...` document-end marker.
    return [" " * indent + line for line in _dump([value])]


def _comments(comments: Sequence[str], indent: int) -> list[str]:
    return [f"{' ' * indent}# {_one_line(comment)}" for comment in comments]


def _sequence(key: str, items: Sequence[Item], indent: int) -> list[str]:
    pad = " " * indent
    if not items:
        return []
    lines = [f"{pad}{key}:" if any(item.present for item in items) else f"{pad}{key}: []"]
    for item in items:
        lines.extend(_comments(item.comments, indent + 2))
        if item.present:
            lines.extend(_list_item(item.value, indent + 2))
    return lines


def _mapping(block: Block, indent: int) -> list[str]:
    lines: list[str] = []
    for key, value in block.keys.items():
        lines.extend(" " * indent + line for line in _dump({key: value}))
    lines.extend(_comments(block.notes, indent))
    lines.extend(_sequence("assert", block.asserts, indent))
    return lines


def _case_lines(block: Block) -> list[str]:
    if block.dropped is not None:
        return _comments([block.dropped], 2)
    if block.reference is not None:
        return [f"  - {block.reference}"]
    body = _mapping(block, 4)
    return ["  - " + body[0][4:], *body[1:]]


@dataclass
class _Document:
    header: list[str]
    baseline: str | None
    models: dict[str, Any]
    provider_notes: list[str]
    top_notes: list[str]
    defaults: Block
    prompts: list[Item]

    def render(self, cases: Sequence[Block]) -> str:
        lines = list(self.header)
        lines.extend(_comments(self.top_notes, 0))
        if self.baseline:
            lines.extend(_dump({"baseline": self.baseline}))
        if self.models:
            lines.extend(_dump({"models": self.models}))
        lines.extend(_comments(self.provider_notes, 0))
        defaults = _mapping(self.defaults, 2)
        if defaults:
            lines.append("defaults:")
            lines.extend(defaults)
        lines.extend(_sequence("prompts", self.prompts, 0))
        lines.append("cases:")
        for block in cases:
            lines.extend(_case_lines(block))
        return "\n".join(lines) + "\n"


# -- the import ----------------------------------------------------------------------------------


def _output_path(options: PromptfooOptions, config: Mapping[str, Any]) -> Path:
    if options.output.suffix.lower() in (".yaml", ".yml"):
        return options.output
    stem = options.config.stem
    name = "promptfoo" if stem.startswith("promptfooconfig") else slug(stem).replace("-", "_") or "promptfoo"
    return options.output / f"llm_{name}.yaml"


def _read_config(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PromptfooError(f"{path}: no such file; pass the suite's promptfooconfig.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptfooError(f"{path}: cannot read it: {exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise PromptfooError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(document, Mapping):
        raise PromptfooError(f"{path}: a promptfoo config is a mapping with prompts, providers and tests")
    return document


HANDLED_TOP = ("description", "prompts", "providers", "targets", "tests", "defaultTest")


def convert_suite(options: PromptfooOptions) -> tuple[dict[Path, str], PromptfooReport]:
    """The files to write (case file first, then the project file if asked) and the summary."""
    report = PromptfooReport()
    config = _read_config(options.config)
    output = _output_path(options, config)
    suite = _Suite(options.config, output.parent)
    top_notes = [
        suite.skip(key, f"{key}: {_shown(config[key])}", "no equivalent in a case file")
        for key in config
        if key not in HANDLED_TOP
    ]
    providers, provider_notes = _providers(suite, config.get("providers", config.get("targets")))
    baseline = providers[0] if providers else None
    defaults = Block(where="defaultTest")
    default_test = config.get("defaultTest")
    if isinstance(default_test, str) and default_test.startswith(FILE_PREFIX):
        default_test = suite.load_data(default_test)
    if isinstance(default_test, Mapping):
        variables = suite.variables(default_test.get("vars"), "defaultTest.vars", defaults.notes)
        if variables:
            defaults.keys["vars"] = variables
        _fill(suite, defaults, default_test, "defaultTest", ("vars",))
    elif default_test is not None:
        defaults.notes.append(
            suite.skip("defaultTest", _shown(default_test), "defaultTest must be a mapping")
        )
    if baseline is not None and baseline.tools is not None:
        defaults.keys["tools"] = baseline.tools
    overrides = {
        provider.name: {"tools": provider.tools}
        for provider in providers[1:]
        if provider.tools is not None and (baseline is None or provider.tools != baseline.tools)
    }
    if overrides:
        defaults.keys["overrides"] = overrides
    prompts = _prompt_items(suite, config.get("prompts"))
    present = [item for item in prompts if item.present]
    if not present:
        raise PromptfooError(f"{options.config}: no prompt could be converted; nothing to run")
    if len(present) == 1 and not any(item.comments for item in prompts):
        only = present[0].value
        if isinstance(only, Mapping) and "messages" in only:
            defaults.keys["messages"] = only["messages"]
        else:
            defaults.keys["prompt"] = only["prompt"] if isinstance(only, Mapping) else only
        prompts = []
    ids = _Ids()
    blocks = _tests(suite, config.get("tests"), ids)
    if not blocks:
        # promptfoo runs a suite without tests once per prompt, with the defaults alone.
        blocks = [Block(keys={"id": ids.make("default", "default")}, where="tests")]
    models = {provider.name: provider.target for provider in providers}
    description = config.get("description")
    header = [
        f"# Converted from {display_path(options.config)} by `llmgate import promptfoo`.",
        *([f"# {_one_line(description)}"] if isinstance(description, str) and description.strip() else []),
        "# Parts with no equivalent here are '# not converted:' comments at their place.",
    ]
    project_text: str | None = None
    if options.project_file is not None and models:
        project_text = "# Targets converted from the promptfoo providers by `llmgate import promptfoo`.\n"
        project_text += "\n".join(_dump({"models": models})) + "\n"
        models = {}
    document = _Document(
        header, baseline.name if baseline else None, models, provider_notes, top_notes, defaults, prompts
    )
    root = Path(os.path.commonpath([output.parent.resolve(), options.config.parent.resolve()]))
    from pytest_llmgate.cases import parse_case_file

    # The case file's folder must exist while it is validated: a `python` check's path such as
    # ../../evals/checks.py goes through it. Folders made for that are removed again; writing
    # makes them for good only when everything is ready.
    made = _make_folders(output.parent)
    try:
        blocks = _validate(suite, document, blocks, output, root)
        text = document.render(blocks)
        case_file = parse_case_file(text, output, root)
    except CaseFileError as exc:
        dropped = next((block.dropped for block in blocks if block.dropped), None)
        reason = f" (first case left out: {dropped})" if dropped else ""
        where = f"{display_path(output)}:{exc.line}" if exc.line else display_path(output)
        raise PromptfooError(
            f"the converted suite would not collect: {where}: {exc.message}{reason}; nothing was written"
        ) from exc
    finally:
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()
    report.cases = len(case_file.cases)
    report.prompts = max(len([item for item in document.prompts if item.present]), 1)
    report.baseline = document.baseline
    report.targets = [provider.name for provider in providers]
    report.not_converted = suite.notes
    files = {output: text}
    if project_text is not None and options.project_file is not None:
        files[options.project_file] = project_text
    return files, report


def _make_folders(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; the ones created, innermost first."""
    missing = [folder, *folder.parents]
    made = [path for path in missing if not path.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _validate(
    suite: _Suite, document: _Document, blocks: list[Block], output: Path, root: Path
) -> list[Block]:
    """Each case as it will collect: an assertion that would not collect is commented out with
    why, a CSV the loader refuses is inlined row by row, any other broken case is commented out."""
    from pytest_llmgate.cases import parse_case_file

    result: list[Block] = []
    pending = list(blocks)
    while pending:
        block = pending.pop(0)
        result.append(block)
        for _attempt in range(len(block.asserts) + len(document.defaults.asserts) + 1):
            if block.dropped is not None:
                break
            try:
                parse_case_file(document.render([block]), output, root)
                break
            except CaseFileError as exc:
                if block.fallback is not None:
                    result.pop()
                    pending[:0] = block.fallback()
                    break
                problem = _one_line(exc.message)
                item, owner = _failing_assertion(document.defaults, block, exc.field)
                if item is None:
                    what = block.reference or f"case {block.keys.get('id')}"
                    block.dropped = suite.skip(block.where, what, f"it would not collect: {problem}")
                    break
                item.present = False
                item.comments.append(
                    suite.skip(
                        f"{owner.where}.assert", _shown(item.value), f"it would not collect: {problem}"
                    )
                )
    return result


def _failing_assertion(defaults: Block, block: Block, field_name: str | None) -> tuple[Item | None, Block]:
    """The written assertion a collection error's `assert[N]` field points at (the defaults'
    come first in a case's list, as promptfoo's defaultTest)."""
    match = re.match(r"assert\[(\d+)\]", field_name or "")
    if match is None or block.reference is not None:
        return None, block
    position = int(match.group(1))
    for owner in (defaults, block):
        present = [item for item in owner.asserts if item.present]
        if position < len(present):
            return present[position], owner
        position -= len(present)
    return None, block


def import_promptfoo(options: PromptfooOptions) -> PromptfooReport:
    """Convert and write, whole or not at all; problems are in the report, never raised."""
    from pytest_llmgate.importers.writer import UnsafeOutput, write_all

    try:
        files, report = convert_suite(options)
    except PromptfooError as exc:
        return PromptfooReport(error=str(exc))
    existing = [path for path in files if path.exists()]
    if existing and not options.force:
        report.error = f"{display_path(existing[0])} exists; pass --force to replace it"
        return report
    try:
        write_all(files)
    except (UnsafeOutput, OSError) as exc:
        report.error = str(exc)
        return report
    report.written = list(files)
    return report
