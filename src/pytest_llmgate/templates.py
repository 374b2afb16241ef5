"""Rendering of case-file templates: Jinja2 in a sandbox, strict about names, JSON for data.

promptfoo suites are written in Nunjucks; Jinja2 is its Python counterpart, so `{{ x | upper }}`,
`{{ style.tone }}`, `{% for %}` and `{% raw %}` mean what they meant there. Three choices make a
template fail loudly rather than reach a model half-rendered:

* `StrictUndefined`: a name no var defines is an error naming the names that exist, never "".
* A `finalize` that writes every non-string value as JSON, so a mapping var renders as
  `{"tone": "formal"}` (not Python's `{'tone': 'formal'}`), `true` and `null` (not `True`, `None`).
* The sandbox: a case file from a pull request cannot reach Python internals through a template.

Text without `{{`, `{%` or `{#` is returned as it is and Jinja2 is not even imported, so suites
without templates pay nothing at start-up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

_LINE_OF_ERROR = re.compile(r"line (\d+)")


class TemplateProblem(Exception):
    """A template cannot be rendered; `line` is the line inside the template text (1-based), if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def is_template(text: str) -> bool:
    """Whether `text` holds any template syntax; plain text is never handed to Jinja2."""
    # Most prompts have no brace at all: one scan answers for them (this runs on every string).
    return "{" in text and ("{{" in text or "{%" in text or "{#" in text)


def to_json(value: Any) -> str:
    """JSON as promptfoo's `dump` writes it (compact keys order kept, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _finalize(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, int, float, list, tuple, dict)):
        return to_json(list(value) if isinstance(value, tuple) else value)
    return value


@dataclass(frozen=True)
class _Jinja:
    """The environment and the exception classes of one import of Jinja2, kept together (a
    second import, as pytester's in-process runs cause, has classes the first does not raise)."""

    environment: SandboxedEnvironment
    syntax_error: type[Exception]
    undefined_error: type[Exception]
    security_error: type[Exception]
    template_error: type[Exception]


def _jinja() -> _Jinja:
    import jinja2

    return _jinja_of(jinja2)


@lru_cache(maxsize=1)
def _jinja_of(module: ModuleType) -> _Jinja:
    """Built once per import of Jinja2: were `jinja2` imported again (pytester's in-process runs
    drop the modules a run imported), an environment of the first import would render undefined
    names as the text "missing", the sentinel of the other copy."""
    from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    environment.filters["dump"] = to_json
    # Jinja's own tojson escapes <, >, & and ' for HTML; a prompt wants the JSON as written.
    environment.filters["tojson"] = to_json
    return _Jinja(environment, TemplateSyntaxError, UndefinedError, SecurityError, TemplateError)


def render(text: str, variables: Mapping[str, Any]) -> str:
    """`text` rendered with `variables`; TemplateProblem says what is wrong and what exists."""
    if not is_template(text):
        return text
    jinja = _jinja()
    try:
        template = jinja.environment.from_string(text)
    except jinja.syntax_error as exc:
        raise TemplateProblem(
            f"template syntax error: {getattr(exc, 'message', exc)}; "
            "write literal braces inside {% raw %}...{% endraw %}",
            getattr(exc, "lineno", None),
        ) from None
    try:
        return template.render(dict(variables))
    except jinja.undefined_error as exc:
        known = ", ".join(sorted(variables)) or "none defined"
        raise TemplateProblem(
            f"{getattr(exc, 'message', exc)} (vars defined: {known}); define it under vars: or "
            "defaults.vars, or write literal braces inside {% raw %}...{% endraw %}",
            _error_line(exc),
        ) from None
    except jinja.security_error as exc:
        raise TemplateProblem(f"template not allowed in the sandbox: {exc}", _error_line(exc)) from None
    except (jinja.template_error, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}", _error_line(exc)) from None


def _error_line(exc: BaseException) -> int | None:
    """The template line the error happened on, from the traceback frame Jinja2 rewrote."""
    traceback = exc.__traceback__
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def render_data(value: Any, variables: Mapping[str, Any]) -> Any:
    """Every string inside `value` (mapping values, list items) rendered; keys and numbers kept."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, Mapping):
        return {key: render_data(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render_data(item, variables) for item in value]
    return value


def referenced_names(text: str) -> set[str]:
    """Names a template reads from its context (for ordering vars that use other vars)."""
    if not is_template(text):
        return set()
    from jinja2 import meta

    jinja = _jinja()
    try:
        return set(meta.find_undeclared_variables(jinja.environment.parse(text)))
    except jinja.syntax_error as exc:
        raise TemplateProblem(
            f"template syntax error: {getattr(exc, 'message', exc)}", getattr(exc, "lineno", None)
        ) from None


def resolve_vars(variables: Mapping[str, Any], templated: set[str] | None = None) -> dict[str, Any]:
    """Vars whose string values use other vars (`full: "{{ first }} {{ last }}"`), rendered in
    dependency order as promptfoo resolves them. `templated` limits which vars are templates
    (None: every string value). Vars that use each other around a cycle are an error.
    """
    names = [
        name
        for name, value in variables.items()
        if isinstance(value, str) and is_template(value) and (templated is None or name in templated)
    ]
    resolved = dict(variables)
    # A var that names only itself (`name: "{{name}}"`) keeps its braces: the way to send a
    # literal `{{name}}` before templates were Jinja2, and what `llmgate import` writes.
    pending = {name: uses for name in names if (uses := referenced_names(resolved[name])) != {name}}
    while pending:
        ready = [name for name, uses in pending.items() if not uses & pending.keys()]
        if not ready:
            cycle = ", ".join(sorted(pending))
            raise TemplateProblem(f"vars {cycle} use each other in a cycle; one of them must be plain")
        for name in ready:
            try:
                resolved[name] = render(resolved[name], resolved)
            except TemplateProblem as exc:
                raise TemplateProblem(f"in vars.{name}: {exc.message}", exc.line) from None
            del pending[name]
    return resolved
