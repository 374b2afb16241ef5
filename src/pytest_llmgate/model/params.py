"""The parameter rules of reasoning models: which request parameters they refuse, and what to do.

Why this exists: the upgrade this plugin gates is often `gpt-4o` -> a reasoning model, and those
answer HTTP 400 to parameters every chat model takes (`max_tokens`, `temperature: 0`, `stop`, ...).
A suite written for the baseline would fail every candidate call before a single answer is
compared. Under `param_policy: adapt` (the default) the request is changed the smallest way that
the API accepts, and every change is returned as an `Adaptation` so reports can show it; under
`strict` the case's params go out as written. Whichever policy, a refusal that still comes back is
turned by `explain_refusal` into one line naming the target, the parameter and the fix.

Pure: plain dicts in, plain dicts out; the request given is never mutated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_llmgate.errors import did_you_mean

POLICIES = ("adapt", "strict")
APIS = ("chat", "responses")
NOT_SENT = "not sent"

_REASONING_ID = re.compile(r"^(?:o[134](?:$|[-_.])|gpt-(?P<major>\d+)(?:$|[-_.]))")
_NON_REASONING_GPT = re.compile(r"^gpt-5-chat(?:$|-)")
_SYSTEM_REFUSING_ID = re.compile(r"^o1-(?:mini|preview)(?:$|-)")
# Parameters reasoning models refuse whatever their value (`stop` is quoted in the real corpus).
_REFUSED_PARAMS = ("stop", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs")
# Parameters reasoning models accept only at their default value.
_DEFAULT_ONLY = {"temperature": 1, "top_p": 1}
_TOOLS_WITH_REASONING = re.compile(
    r"Function tools with reasoning_effort are not supported for (?P<model>\S+) in /v1/chat/completions"
)
_ROLE_PARAM = re.compile(r"^(?:messages|input)\[(?P<index>\d+)\]\.role$")


ADAPTED_NOTE = "params adapted: "
"""Prefix of the case notes that say what a target was sent instead of the case's params."""


@dataclass(frozen=True)
class Adaptation:
    """One change made to a request before it was sent, independent of the target that needed it.

    `value` is the case's value as JSON text (so adaptations are hashable and print the way the
    YAML was written); `to` is the name the value was sent under, the role it became, or
    "not sent". Reports show it once per target and parameter, prefixed with the target's name.
    """

    param: str
    value: str
    to: str
    reason: str

    def describe(self) -> str:
        """'temperature=0 not sent (reasoning models accept only 1)'."""
        change = NOT_SENT if self.to == NOT_SENT else f"sent as {self.to}"
        return f"{self.param}={self.value} {change} ({self.reason})"

    def to_dict(self) -> dict[str, str]:
        return {"param": self.param, "value": self.value, "to": self.to, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Adaptation:
        return cls(
            param=str(data["param"]), value=str(data["value"]), to=str(data["to"]), reason=str(data["reason"])
        )


def is_reasoning_model(model_id: str) -> bool:
    """Whether `model_id` belongs to a known reasoning family: o1, o3, o4, gpt-5 and later.

    Dated ids (`o3-mini-2025-01-31`), provider prefixes (`openai/gpt-5`) and letter case do not
    matter. `gpt-5-chat-latest` is the non-reasoning GPT-5 and takes `temperature`. A deployment
    named freely (Azure) is not recognised: its target says `reasoning: true`.
    """
    name = _bare_id(model_id)
    match = _REASONING_ID.match(name)
    if match is None or _NON_REASONING_GPT.match(name):
        return False
    major = match.group("major")
    return major is None or int(major) >= 5


def refuses_system_role(model_id: str) -> bool:
    """The older o1 models (`o1-mini`, `o1-preview`) answer 400 to a `system` message."""
    return _SYSTEM_REFUSING_ID.match(_bare_id(model_id)) is not None


def adapt_params(
    request: Mapping[str, Any], *, api: str, reasoning: bool, policy: str
) -> tuple[dict[str, Any], tuple[Adaptation, ...]]:
    """The request to send for a chat.completions-style `request` and what was changed in it.

    Nothing changes for a model that is not a reasoning model or under `policy="strict"`. For a
    reasoning model under `adapt`: `max_tokens` is sent as `max_completion_tokens` (chat) or
    `max_output_tokens` (responses); `temperature`/`top_p` other than 1 (on responses: at any
    value, which that API refuses for reasoning models) and `stop`,
    `presence_penalty`, `frequency_penalty`, `logprobs`, `top_logprobs` are left out; on chat, a
    `system` message becomes `developer` for the models that refuse `system` (on responses the
    adapter moves system text to `instructions`, which every model takes). A parameter set to
    null is left out silently: nothing was asked for, so nothing is reported.
    """
    if api not in APIS:
        raise ValueError(f"unknown api {api!r}; known: {', '.join(APIS)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown param_policy {policy!r}; known: {', '.join(POLICIES)}")
    adapted = dict(request)
    if policy == "strict" or not reasoning:
        return adapted, ()
    changes: list[Adaptation] = []
    limit_name = "max_completion_tokens" if api == "chat" else "max_output_tokens"
    if "max_tokens" in adapted:
        value = adapted.pop("max_tokens")
        if value is not None and adapted.get(limit_name) is not None:
            changes.append(Adaptation("max_tokens", _shown(value), NOT_SENT, f"{limit_name} is set too"))
        elif value is not None:
            adapted[limit_name] = value
            changes.append(
                Adaptation("max_tokens", _shown(value), limit_name, f"reasoning models take {limit_name}")
            )
    for name, default in _DEFAULT_ONLY.items():
        if name not in adapted:
            continue
        value = adapted[name]
        if value is None:
            del adapted[name]
        elif api == "responses":
            # The Responses API refuses the parameter itself for reasoning models, whatever its value.
            del adapted[name]
            changes.append(Adaptation(name, _shown(value), NOT_SENT, "reasoning models refuse it"))
        elif value != default or isinstance(value, bool):
            del adapted[name]
            changes.append(
                Adaptation(name, _shown(value), NOT_SENT, f"reasoning models accept only {default}")
            )
    for name in _REFUSED_PARAMS:
        if name not in adapted:
            continue
        value = adapted.pop(name)
        if value is not None:
            changes.append(Adaptation(name, _shown(value), NOT_SENT, "reasoning models refuse it"))
    if api == "chat" and refuses_system_role(str(adapted.get("model", ""))):
        adapted["messages"], role_changes = _system_to_developer(adapted.get("messages"))
        changes.extend(role_changes)
    return adapted, tuple(changes)


def explain_refusal(
    error_message: str,
    error_code: str | None,
    error_param: str | None,
    target: str,
    *,
    policy: str | None = None,
) -> str | None:
    """One line naming the target, the refused parameter and the exact fix; None when the error is
    not a parameter refusal (a model that does not exist, a bad key, ...).

    With `policy="adapt"` the refusal means pytest-llmgate did not know the model reasons (a
    freely named deployment), so the first fix offered is `reasoning: true` on the target.
    """
    tools = _TOOLS_WITH_REASONING.search(error_message or "")
    if tools is not None:
        return (
            f"{target}: the API refuses function tools on /v1/chat/completions because reasoning is on "
            f"by default for {tools.group('model')}; fix: set `api: responses` on the target "
            f"`{target}` in models:, or turn reasoning off for it with "
            f"`overrides: {{{target}: {{params: {{reasoning_effort: none}}}}}}`"
        )
    if error_code == "unknown_parameter" and error_param:
        return (
            f"{target}: the Responses API has no parameter {error_param} (the target says "
            f"`api: responses`); fix: write `overrides: {{{target}: {{params: {{{error_param}: null}}}}}}`, "
            f"or set `api: chat` on the target"
        )
    refused = error_code in ("unsupported_parameter", "unsupported_value") or (
        # The Responses API sends some of these refusals with code null.
        (error_message or "").startswith(("Unsupported parameter:", "Unsupported value:"))
    )
    if not refused or not error_param:
        return None
    mark = (
        f"mark the target as a reasoning model (`reasoning: true` under models: {target}) so "
        f"`param_policy: adapt` applies; or "
        if policy == "adapt"
        else ""
    )
    adapt = f"{mark}set `param_policy: adapt` (or --llm-param-policy=adapt)"
    role = _ROLE_PARAM.match(error_param)
    if role is not None:
        return (
            f"{target}: the API refuses the role of {error_param} ({_quoted_value(error_message)} "
            f"messages); fix: {adapt} to send it as a developer message, or give {target} messages "
            f"without it with `overrides: {{{target}: {{messages: [...]}}}}`"
        )
    param = error_param
    if param == "max_tokens":
        return (
            f"{target}: the API refuses max_tokens (this model takes max_completion_tokens); fix: "
            f"{adapt} to send the limit as max_completion_tokens, or write "
            f"`overrides: {{{target}: {{params: {{max_tokens: null, max_completion_tokens: N}}}}}}`"
        )
    if param in _DEFAULT_ONLY and error_code == "unsupported_value":
        value = _quoted_value(error_message)
        shown = f"={value}" if value else ""
        return (
            f"{target}: the API refuses {param}{shown} (reasoning models accept only "
            f"{_DEFAULT_ONLY[param]}); fix: {adapt} to leave it out, or write "
            f"`overrides: {{{target}: {{params: {{{param}: {_DEFAULT_ONLY[param]}}}}}}}`"
        )
    return (
        f"{target}: the API refuses the parameter {param}; fix: {adapt} to leave it out, or write "
        f"`overrides: {{{target}: {{params: {{{param}: null}}}}}}`"
    )


def _bare_id(model_id: str) -> str:
    return model_id.strip().lower().rsplit("/", 1)[-1]


def _shown(value: Any) -> str:
    """A value as the YAML author would recognise it: JSON text (`0`, `["4242"]`, `true`)."""
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _quoted_value(message: str) -> str:
    """The value an `Unsupported value: 'x' does not support V with this model.` message names."""
    match = re.search(r"does not support (.+?) with this model", message or "")
    return match.group(1).strip("'") if match else ""


def _system_to_developer(messages: Any) -> tuple[Any, list[Adaptation]]:
    if not isinstance(messages, list):
        return messages, []
    changed: list[Adaptation] = []
    result: list[Any] = []
    for message in messages:
        if isinstance(message, Mapping) and message.get("role") == "system":
            message = {**message, "role": "developer"}
            if not changed:  # one line per target and parameter, however many system messages
                changed.append(
                    Adaptation("role", "system", "developer", "this model refuses system messages")
                )
        result.append(message)
    return result, changed


CHAT_PARAMS = (
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls",
    "prediction", "presence_penalty", "prompt_cache_key", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options",
    "temperature", "tool_choice", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
)  # fmt: skip
"""`chat.completions.create` body parameters (openai SDK 3.x), besides model, messages and tools."""
RESPONSES_PARAMS = (
    "background", "conversation", "include", "instructions", "max_output_tokens", "max_tool_calls",
    "metadata", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
    "reasoning", "safety_identifier", "service_tier", "store", "stream", "stream_options",
    "temperature", "text", "tool_choice", "top_logprobs", "top_p", "truncation", "user",
)  # fmt: skip
"""`responses.create` body parameters: a case may target either wire format (`api:` per target)."""
PASS_THROUGH_PARAMS = ("extra_body", "extra_query", "extra_headers")
"""The SDK's escape hatches: vendor fields (`top_k`, `repetition_penalty`, ...) go in extra_body."""
KNOWN_PARAMS = tuple(sorted({*CHAT_PARAMS, *RESPONSES_PARAMS, *PASS_THROUGH_PARAMS}))
"""Every request parameter a case or a target's `params:` may set; anything else is a typo or a
vendor field (which goes under extra_body)."""


def unknown_param(params: Iterable[Any], where: str) -> tuple[str, str] | None:
    """The first of `params` neither wire API knows and the message saying so (with a did-you-mean
    and where a vendor's own field goes), for a case's or a target's `params` at `where`; None
    when every name is known. A misspelt `temprature` is caught at collection, not by a live call.
    """
    for name in params:
        if name not in KNOWN_PARAMS:
            return str(name), (
                f"{where} has an unknown parameter {name!r}{did_you_mean(str(name), KNOWN_PARAMS)}; the "
                f"chat and responses APIs know {', '.join(KNOWN_PARAMS)}. A vendor's own field goes under "
                f"extra_body, e.g. params: {{extra_body: {{{name}: ...}}}}"
            )
    return None
