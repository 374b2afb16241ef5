"""Tool and routing kinds: tool-call, is-valid-openai-tools-call, finish-reason, refusal.

Tool calls are judged from `reply.tool_calls`; their `arguments` are the raw JSON the model
wrote, parsed here, so arguments that are not JSON are a failure with a reason, not a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmgate.assertions.base import (
    AssertionConfigError,
    AssertionContext,
    AssertionSpec,
    CheckError,
    Verdict,
    register,
)
from pytest_llmgate.assertions.structured import json_subset, schema_problem, schema_validator
from pytest_llmgate.assertions.text import excerpt, show
from pytest_llmgate.reply import Reply, ToolCall

# Phrases that open a refusal, compared case-insensitively with curly apostrophes made straight.
# Specific on purpose: "I can't provide an exact figure, but..." is an answer, not a refusal.
REFUSAL_PHRASES = (
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i can't help you with",
    "i cannot help you with",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am sorry, but i cannot",
    "i'm sorry, i can't",
    "sorry, but i can't",
    "i'm unable to help",
    "i am unable to help",
    "i'm unable to assist",
    "i am unable to assist",
    "i'm not able to help",
    "i won't be able to help",
    "i can't comply",
    "i cannot comply",
    "i must decline",
    "i can't fulfill",
    "i cannot fulfill",
    "i won't help with",
    "i will not help with",
)
# A refusal opens the reply; a phrase deep inside a long answer is more likely quoted or a caveat.
REFUSAL_WINDOW = 300


def _describe_call(call: ToolCall) -> str:
    return f"{call.name}({excerpt(call.arguments, 40)})"


def _calls_summary(reply: Reply) -> str:
    if not reply.tool_calls:
        return f"the reply made no tool calls (text: {excerpt(reply.text, 60)})"
    return "calls: " + ", ".join(_describe_call(call) for call in reply.tool_calls[:5])


# --- tool-call ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedCall:
    name: str
    arguments: Mapping[str, Any] | None
    validator: Any


def _prepare_tool_call(spec: AssertionSpec) -> ExpectedCall:
    value = spec.value
    if isinstance(value, str) and value:
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        raise AssertionConfigError(
            f"tool-call needs value {{name: ..., arguments: {{...}}}} or a tool name, got {show(spec.value)}",
            "value",
        )
    extra = sorted(set(value) - {"name", "arguments"})
    if extra:
        raise AssertionConfigError(f"tool-call value takes name and arguments, not {extra[0]!r}", "value")
    arguments = value.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise AssertionConfigError(f"tool-call arguments are not JSON: {exc}", "value") from exc
    if arguments is not None and not isinstance(arguments, dict):
        raise AssertionConfigError(f"tool-call arguments must be a mapping, got {show(arguments)}", "value")
    schema = spec.options.get("schema")
    validator = None if schema is None else schema_validator(schema, "schema")
    return ExpectedCall(name=value["name"], arguments=arguments, validator=validator)


@register("tool-call", fields=("schema",), prepare=_prepare_tool_call, value_required=True)
def check_tool_call(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Some call to `name` whose arguments contain the expected ones (extra keys allowed) and, with
    `schema`, validate against it."""
    expected: ExpectedCall = spec.prepared
    label = f"{spec.kind} {expected.name}"
    candidates = [call for call in reply.tool_calls if call.name == expected.name]
    if not candidates:
        return Verdict.of(False, f"{label}: no call to {expected.name}; {_calls_summary(reply)}")
    problems = []
    for call in candidates:
        try:
            arguments = call.parsed_arguments()
        except ValueError:
            problems.append(f"arguments are not JSON: {excerpt(call.arguments, 60)}")
            continue
        problem = None
        if expected.arguments is not None:
            problem = json_subset(dict(expected.arguments), arguments, "arguments")
        if problem is None and expected.validator is not None:
            problem = schema_problem(expected.validator, arguments, "arguments")
        if problem is None:
            return Verdict.of(True, f"{label}: called with {excerpt(call.arguments, 60)}")
        problems.append(problem)
    more = f" (and {len(problems) - 1} other call(s))" if len(problems) > 1 else ""
    return Verdict.of(False, f"{label}: {problems[0]}{more}")


# --- is-valid-openai-tools-call ----------------------------------------------------------------


def tool_validators(tools: Any, field: str | None) -> dict[str, Any]:
    """Tool name -> validator of its parameters, from OpenAI tool declarations.

    Accepts `{type: function, function: {name, parameters}}` and the bare `{name, parameters}`;
    a tool without `parameters` takes any arguments object.
    """
    if not isinstance(tools, Sequence) or isinstance(tools, (str, bytes)):
        raise AssertionConfigError(f"tools must be a list of tool declarations, got {show(tools)}", field)
    validators: dict[str, Any] = {}
    for position, tool in enumerate(tools):
        function = tool.get("function", tool) if isinstance(tool, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(name, str) or not name:
            raise AssertionConfigError(
                f"tool {position} is not {{type: function, function: {{name, parameters}}}}: {show(tool)}",
                field,
            )
        parameters = function.get("parameters", {"type": "object"})
        try:
            validators[name] = schema_validator(parameters, field or "tools")
        except AssertionConfigError as exc:
            raise AssertionConfigError(f"parameters of tool {name!r}: {exc.message}", field) from exc
    return validators


def _prepare_valid_tools_call(spec: AssertionSpec) -> dict[str, Any] | None:
    return None if spec.value is None else tool_validators(spec.value, "value")


@register("is-valid-openai-tools-call", prepare=_prepare_valid_tools_call)
def check_valid_tools_call(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Every tool call names a declared tool and its arguments validate against its parameters.

    The tools are the case's (`context.tools`) unless the assertion's value lists its own.
    """
    validators = spec.prepared
    if validators is None:
        if not context.tools:
            raise CheckError(
                "no tools declared: give the case `tools:` or list them as this assertion's value"
            )
        try:
            validators = tool_validators(context.tools, None)
        except AssertionConfigError as exc:
            raise CheckError(f"the case's tools are invalid: {exc.message}") from exc
    if not reply.tool_calls:
        return Verdict.of(False, f"{spec.kind}: {_calls_summary(reply)}")
    for call in reply.tool_calls:
        validator = validators.get(call.name)
        if validator is None:
            declared = ", ".join(sorted(validators))
            return Verdict.of(
                False, f"{spec.kind}: calls undeclared tool {call.name!r} (declared: {declared})"
            )
        try:
            arguments = call.parsed_arguments()
        except ValueError:
            return Verdict.of(
                False, f"{spec.kind}: arguments of {call.name} are not JSON: {excerpt(call.arguments, 60)}"
            )
        problem = schema_problem(validator, arguments, "arguments")
        if problem is not None:
            return Verdict.of(False, f"{spec.kind}: call {call.name}: {problem}")
    count = len(reply.tool_calls)
    return Verdict.of(True, f"{spec.kind}: {count} tool call{'s' if count != 1 else ''} valid")


# --- finish-reason -----------------------------------------------------------------------------


def _prepare_finish_reason(spec: AssertionSpec) -> str:
    if not isinstance(spec.value, str) or not spec.value:
        raise AssertionConfigError(
            f"finish-reason needs a finish reason such as stop, length, tool_calls, got {show(spec.value)}",
            "value",
        )
    return spec.value


@register("finish-reason", prepare=_prepare_finish_reason, value_required=True)
def check_finish_reason(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """Use `not-finish-reason: length` for "the reply was not cut off by max_tokens"."""
    if reply.finish_reason == spec.prepared:
        return Verdict.of(True, f"{spec.kind}: {reply.finish_reason!r}")
    return Verdict.of(False, f"{spec.kind}: expected {spec.prepared!r}, got {reply.finish_reason!r}")


# --- refusal -----------------------------------------------------------------------------------


def _prepare_refusal(spec: AssertionSpec) -> tuple[str, ...]:
    """Optional value: extra phrases that also count as a refusal."""
    value = spec.value
    if value is None:
        return REFUSAL_PHRASES
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise AssertionConfigError(
            f"{spec.kind} takes an optional list of extra phrases, got {show(spec.value)}", "value"
        )
    return REFUSAL_PHRASES + tuple(_fold(item) for item in value)


def _fold(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").replace("\u2018", "'").casefold().split())


def refusal_phrase(text: str, phrases: Sequence[str] = REFUSAL_PHRASES) -> str | None:
    """The refusal phrase the start of `text` contains, or None."""
    opening = _fold(text)[:REFUSAL_WINDOW]
    return next((phrase for phrase in phrases if phrase in opening), None)


def check_refusal(spec: AssertionSpec, reply: Reply, context: AssertionContext) -> Verdict:
    """The API's `refusal` field is set, or the reply opens with a refusal phrase."""
    if reply.refusal:
        return Verdict.of(True, f"{spec.kind}: the API reports a refusal: {excerpt(reply.refusal, 60)}")
    phrase = refusal_phrase(reply.text, spec.prepared)
    if phrase is not None:
        return Verdict.of(True, f"{spec.kind}: the reply refuses ({phrase!r}): {excerpt(reply.text, 60)}")
    return Verdict.of(False, f"{spec.kind}: no refusal in {excerpt(reply.text)}")


register("refusal", prepare=_prepare_refusal)(check_refusal)
register("is-refusal", prepare=_prepare_refusal)(check_refusal)  # promptfoo's name
