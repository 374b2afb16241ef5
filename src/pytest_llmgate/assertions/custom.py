"""The escape hatch: `python`, a check written as a Python function of the user's own.

`value` names the function: `"package.module:function"` (imported normally; if that fails and
`package/module.py` exists next to the case file, that file is loaded) or
`"path/to/file.py:function"` (relative to the case file's folder; promptfoo's `file://` prefix is
accepted, and a file without `:function` means promptfoo's default `get_assert`). The function is
loaded at collection, so a typo is a collection error; it is the user's own code, so unlike
python-tests it runs in-process, unsandboxed.

It is called as `fn(output, context)`: `output` is the reply text, `context` a dict with
case_id, model, vars, messages, reply (`Reply.to_dict()`) and raw (the decoded response body).
It returns a bool; a number in [0, 1] (a score, passing at >= threshold, default 0.5 - promptfoo
passes any score > 0, which counts partial credit as a pass); or a dict with `pass`, `score`
and `reason` (all optional but one of pass/score).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_llmgate.assertions.base import (
    AssertionConfigError,
    AssertionContext,
    AssertionSpec,
    CheckError,
    Verdict,
    register,
)
from pytest_llmgate.assertions.text import show
from pytest_llmgate.reply import Reply

DEFAULT_PYTHON_THRESHOLD = 0.5
DEFAULT_FUNCTION = "get_assert"
FILE_PREFIX = "file://"


@dataclass(frozen=True)
class LoadedFunction:
    label: str
    function: Callable[..., Any]
    threshold: float


def _split_reference(value: str) -> tuple[str, str]:
    reference = value.strip()
    if reference.startswith(FILE_PREFIX):
        reference = reference[len(FILE_PREFIX) :]
    target, colon, function = reference.rpartition(":")
    if not colon or not target or "/" in function or "\\" in function:
        if reference.endswith(".py"):
            return reference, DEFAULT_FUNCTION
        raise AssertionConfigError(
            f"python needs value 'module:function' or 'path/to/file.py:function', got {value!r}", "value"
        )
    if not function.isidentifier():
        raise AssertionConfigError(f"{function!r} is not a function name (in {value!r})", "value")
    return target, function


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def load_file(path: Path) -> ModuleType:
    """Import a file as a module under a name derived from its path (dataclasses and pickling need
    it registered in sys.modules)."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    name = f"_llmgate_assert_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _load_module(target: str, base_dir: Path | None) -> ModuleType:
    base = base_dir or Path.cwd()
    if _is_path(target):
        path = Path(target) if Path(target).is_absolute() else base / target
        if not path.is_file():
            raise FileNotFoundError(f"no file {path}")
        return load_file(path)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        local = base / (target.replace(".", "/") + ".py")
        if exc.name and target.startswith(exc.name) and local.is_file():
            return load_file(local)
        raise


def _prepare_python(spec: AssertionSpec) -> LoadedFunction:
    if not isinstance(spec.value, str) or not spec.value.strip():
        raise AssertionConfigError("python needs value 'module:function' or 'file.py:function'", "value")
    target, name = _split_reference(spec.value)
    try:
        module = _load_module(target, spec.base_dir)
    except Exception as exc:
        raise AssertionConfigError(
            f"cannot load {target!r}: {type(exc).__name__}: {' '.join(str(exc).split())}", "value"
        ) from exc
    function = getattr(module, name, None)
    if function is None:
        raise AssertionConfigError(f"{target!r} has no function {name!r}", "value")
    if not callable(function):
        raise AssertionConfigError(f"{target}:{name} is not callable", "value")
    threshold = DEFAULT_PYTHON_THRESHOLD if spec.threshold is None else spec.threshold
    return LoadedFunction(label=f"{target}:{name}", function=function, threshold=threshold)


def _context_dict(reply: Reply, context: AssertionContext) -> dict[str, Any]:
    return {
        "case_id": context.case_id,
        "model": context.model,
        "vars": dict(context.vars),
        "messages": [dict(message) for message in context.messages],
        "reply": reply.to_dict(),
        "raw": reply.raw,
    }


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {Path(last.filename).name}:{last.lineno})"


@register("python", prepare=_prepare_python, value_required=True)
def check_python(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    loaded: LoadedFunction = spec.prepared
    try:
        result = loaded.function(reply.text, _context_dict(reply, context))
    except Exception as exc:
        message = " ".join(str(exc).split())
        raise CheckError(
            f"{loaded.label} raised {type(exc).__name__}{': ' + message if message else ''}{_where(exc)}"
        ) from exc
    return interpret_result(loaded.label, result, loaded.threshold)


def interpret_result(label: str, result: Any, threshold: float) -> Verdict:
    """Turn what a custom function returned into a verdict; a result of the wrong shape fails the
    assertion with a reason saying what was expected (and its negation too)."""
    if isinstance(result, bool):
        return Verdict.of(result, f"{label} returned {result}")
    if isinstance(result, (int, float)):
        return _scored(label, float(result), threshold, None)
    if isinstance(result, dict):
        reason = result.get("reason")
        reason = None if reason is None else " ".join(str(reason).split())
        score = result.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise CheckError(f"{label} returned score {show(score)}; expected a number in [0, 1]")
        if "pass" in result:
            if not isinstance(result["pass"], bool):
                raise CheckError(f"{label} returned pass {show(result['pass'])}; expected true or false")
            passed = result["pass"]
            final = (1.0 if passed else 0.0) if score is None else float(score)
            if math.isnan(final) or not 0.0 <= final <= 1.0:
                raise CheckError(f"{label} returned score {final}, outside [0, 1]")
            return Verdict(passed, final, f"{label}: {reason or ('pass' if passed else 'fail')}")
        if score is not None:
            return _scored(label, float(score), threshold, reason)
        raise CheckError(f"{label} returned a dict without pass or score: {show(result)}")
    raise CheckError(
        f"{label} returned {show(result)}; expected a bool, a score in [0, 1] or {{pass, score, reason}}"
    )


def _scored(label: str, score: float, threshold: float, reason: str | None) -> Verdict:
    if math.isnan(score) or not 0.0 <= score <= 1.0:
        raise CheckError(f"{label} returned score {score}, outside [0, 1]")
    passed = score >= threshold
    relation = ">=" if passed else "<"
    detail = f": {reason}" if reason else ""
    return Verdict(passed, score, f"{label} scored {score:g} {relation} {threshold:g}{detail}")
