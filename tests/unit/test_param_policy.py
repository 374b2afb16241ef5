"""Reasoning-model parameter rules: which models reason, what `adapt` changes, how refusals read."""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import pytest

from pytest_llmgate.model.params import (
    NOT_SENT,
    Adaptation,
    adapt_params,
    explain_refusal,
    is_reasoning_model,
    refuses_system_role,
)
from pytest_llmgate.model.responses import build_request, parse_response
from pytest_llmgate.response import ApiError, parse_chat_completion
from pytest_llmgate.simulator import OpenAISimulator, ReasoningRules

TYPICAL = {
    "model": "gpt-5.5",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ],
    "temperature": 0,
    "max_tokens": 300,
}

# The real API's words (shared corpus 045/046/076 and public reports quoted in issue 13).
STOP_REFUSAL = "Unsupported parameter: 'stop' is not supported with this model."
MAX_TOKENS_REFUSAL = (
    "Unsupported parameter: 'max_tokens' is not supported with this model. "
    "Use 'max_completion_tokens' instead."
)
TEMPERATURE_REFUSAL = (
    "Unsupported value: 'temperature' does not support 0 with this model. "
    "Only the default (1) value is supported."
)
SYSTEM_REFUSAL = "Unsupported value: 'messages[0].role' does not support 'system' with this model."
TOOLS_REFUSAL = (
    "Function tools with reasoning_effort are not supported for gpt-5.4 in /v1/chat/completions. "
    "Please use /v1/responses instead."
)


@pytest.mark.parametrize(
    "model",
    [
        "o1",
        "o1-mini",
        "o1-preview-2024-09-12",
        "o3",
        "o3-mini-2025-01-31",
        "o3-pro",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano-2025-08-07",
        "gpt-5.4-mini",
        "gpt-5.5",
        "GPT-5.5",
        "gpt-6",
        "gpt-10-turbo",
        "openai/gpt-5.2",
    ],
)
def test_known_reasoning_families(model: str) -> None:
    assert is_reasoning_model(model)


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.5-preview",
        "gpt-3.5-turbo-0125",
        "gpt-5-chat-latest",
        "gpt-oss-120b",
        "o2-fake",
        "foo1",
        "my-azure-deployment",
        "",
    ],
)
def test_other_models_are_not_reasoning_models(model: str) -> None:
    assert not is_reasoning_model(model)


@pytest.mark.parametrize(
    ("model", "refuses"),
    [
        ("o1-mini", True),
        ("o1-preview", True),
        ("o1-mini-2024-09-12", True),
        ("o1", False),
        ("gpt-5.5", False),
    ],
)
def test_older_o1_models_refuse_system(model: str, refuses: bool) -> None:
    assert refuses_system_role(model) is refuses


# -- adapt_params -----------------------------------------------------------------------------


def test_typical_case_adapted_for_chat() -> None:
    sent, changes = adapt_params(TYPICAL, api="chat", reasoning=True, policy="adapt")

    assert sent == {"model": "gpt-5.5", "messages": TYPICAL["messages"], "max_completion_tokens": 300}
    assert [change.describe() for change in changes] == [
        "max_tokens=300 sent as max_completion_tokens (reasoning models take max_completion_tokens)",
        "temperature=0 not sent (reasoning models accept only 1)",
    ]


def test_typical_case_adapted_for_responses() -> None:
    sent, changes = adapt_params(TYPICAL, api="responses", reasoning=True, policy="adapt")

    assert sent == {"model": "gpt-5.5", "messages": TYPICAL["messages"], "max_output_tokens": 300}
    assert changes == (
        Adaptation("max_tokens", "300", "max_output_tokens", "reasoning models take max_output_tokens"),
        Adaptation("temperature", "0", NOT_SENT, "reasoning models refuse it"),
    )


def test_request_is_not_mutated() -> None:
    before = copy.deepcopy(TYPICAL)

    adapt_params(TYPICAL, api="chat", reasoning=True, policy="adapt")

    assert before == TYPICAL


@pytest.mark.parametrize("policy", ["strict", "adapt"])
def test_nothing_changes_under_strict_or_for_other_models(policy: str) -> None:
    reasoning = policy == "adapt"  # adapt, but the model does not reason
    request = {**TYPICAL, "stop": ["\n"], "top_p": 0.5}

    sent, changes = adapt_params(request, api="chat", reasoning=not reasoning, policy=policy)

    assert sent == request
    assert changes == ()


def test_every_refused_parameter_is_left_out_and_reported() -> None:
    request = {
        "model": "o3",
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["4242"],
        "presence_penalty": 0.5,
        "frequency_penalty": 0,
        "logprobs": True,
        "top_logprobs": 2,
        "seed": 1,
    }

    sent, changes = adapt_params(request, api="chat", reasoning=True, policy="adapt")

    assert sent == {"model": "o3", "messages": request["messages"], "seed": 1}
    assert [change.describe() for change in changes] == [
        "temperature=0.7 not sent (reasoning models accept only 1)",
        "top_p=0.9 not sent (reasoning models accept only 1)",
        'stop=["4242"] not sent (reasoning models refuse it)',
        "presence_penalty=0.5 not sent (reasoning models refuse it)",
        "frequency_penalty=0 not sent (reasoning models refuse it)",
        "logprobs=true not sent (reasoning models refuse it)",
        "top_logprobs=2 not sent (reasoning models refuse it)",
    ]


def test_the_default_temperature_is_kept_on_chat() -> None:
    request = {"model": "o3", "messages": [], "temperature": 1, "top_p": 1.0}

    sent, changes = adapt_params(request, api="chat", reasoning=True, policy="adapt")

    assert sent == request
    assert changes == ()


def test_null_params_are_left_out_silently() -> None:
    request = {"model": "o3", "messages": [], "temperature": None, "stop": None, "max_tokens": None}

    sent, changes = adapt_params(request, api="chat", reasoning=True, policy="adapt")

    assert sent == {"model": "o3", "messages": []}
    assert changes == ()


def test_max_tokens_beside_max_completion_tokens_is_dropped() -> None:
    request = {"model": "o3", "messages": [], "max_tokens": 100, "max_completion_tokens": 500}

    sent, changes = adapt_params(request, api="chat", reasoning=True, policy="adapt")

    assert sent == {"model": "o3", "messages": [], "max_completion_tokens": 500}
    assert [change.describe() for change in changes] == [
        "max_tokens=100 not sent (max_completion_tokens is set too)"
    ]


def test_system_becomes_developer_for_models_refusing_system_on_chat() -> None:
    request = {
        "model": "o1-mini",
        "messages": [
            {"role": "system", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "system", "content": "c"},
        ],
    }

    sent, changes = adapt_params(request, api="chat", reasoning=True, policy="adapt")

    assert [message["role"] for message in sent["messages"]] == ["developer", "user", "developer"]
    assert [message["content"] for message in sent["messages"]] == ["a", "b", "c"]
    assert [change.describe() for change in changes] == [
        "role=system sent as developer (this model refuses system messages)"
    ]
    assert request["messages"][0]["role"] == "system"


def test_system_stays_for_models_that_take_it() -> None:
    sent, changes = adapt_params(TYPICAL, api="chat", reasoning=True, policy="adapt")

    assert sent["messages"][0]["role"] == "system"
    assert all(change.param != "role" for change in changes)


def test_adaptation_round_trips_as_plain_data() -> None:
    change = Adaptation("stop", '["x"]', NOT_SENT, "reasoning models refuse it")

    assert Adaptation.from_dict(change.to_dict()) == change
    assert len({change, Adaptation.from_dict(change.to_dict())}) == 1  # hashable: once per target


@pytest.mark.parametrize(("api", "policy"), [("completions", "adapt"), ("chat", "lenient")])
def test_unknown_api_or_policy_is_refused(api: str, policy: str) -> None:
    with pytest.raises(ValueError, match="unknown"):
        adapt_params(TYPICAL, api=api, reasoning=True, policy=policy)


# -- explain_refusal --------------------------------------------------------------------------


def test_explains_max_tokens() -> None:
    message = explain_refusal(MAX_TOKENS_REFUSAL, "unsupported_parameter", "max_tokens", "gpt-5.5")

    assert message == (
        "gpt-5.5: the API refuses max_tokens (this model takes max_completion_tokens); fix: set "
        "`param_policy: adapt` (or --llm-param-policy=adapt) to send the limit as max_completion_tokens, "
        "or write `overrides: {gpt-5.5: {params: {max_tokens: null, max_completion_tokens: N}}}`"
    )


def test_explains_temperature_with_its_value() -> None:
    message = explain_refusal(TEMPERATURE_REFUSAL, "unsupported_value", "temperature", "candidate")

    assert message == (
        "candidate: the API refuses temperature=0 (reasoning models accept only 1); fix: set "
        "`param_policy: adapt` (or --llm-param-policy=adapt) to leave it out, or write "
        "`overrides: {candidate: {params: {temperature: 1}}}`"
    )


def test_explains_stop() -> None:
    message = explain_refusal(STOP_REFUSAL, "unsupported_parameter", "stop", "gpt-5-mini")

    assert message is not None
    assert message.startswith(
        "gpt-5-mini: the API refuses the parameter stop; fix: set `param_policy: adapt`"
    )
    assert message.endswith("`overrides: {gpt-5-mini: {params: {stop: null}}}`")


def test_explains_a_refusal_sent_with_code_null() -> None:
    message = explain_refusal(
        "Unsupported parameter: 'temperature' is not supported with this model.",
        None,
        "temperature",
        "gpt-5.5",
    )

    assert message is not None
    assert "gpt-5.5: the API refuses the parameter temperature" in message


def test_explains_the_system_role() -> None:
    message = explain_refusal(SYSTEM_REFUSAL, "unsupported_value", "messages[0].role", "o1-mini")

    assert message is not None
    assert message.startswith("o1-mini: the API refuses the role of messages[0].role (system messages)")
    assert "to send it as a developer message" in message


@pytest.mark.parametrize(
    "text",
    [
        TOOLS_REFUSAL,
        "Function tools with reasoning_effort are not supported for gpt-5.6-terra in /v1/chat/completions. "
        "To use function tools, use /v1/responses or set reasoning_effort to 'none'.",
    ],
)
def test_explains_tools_with_reasoning(text: str) -> None:
    message = explain_refusal(text, None, "reasoning_effort", "candidate")

    assert message is not None
    assert message.startswith("candidate: the API refuses function tools on /v1/chat/completions")
    assert "set `api: responses` on the target `candidate`" in message
    assert "`overrides: {candidate: {params: {reasoning_effort: none}}}`" in message


def test_explains_a_chat_parameter_the_responses_api_does_not_know() -> None:
    message = explain_refusal("Unknown parameter: 'stop'.", "unknown_parameter", "stop", "gpt-5.5")

    assert message == (
        "gpt-5.5: the Responses API has no parameter stop (the target says `api: responses`); fix: "
        "write `overrides: {gpt-5.5: {params: {stop: null}}}`, or set `api: chat` on the target"
    )


def test_under_adapt_a_refusal_means_the_model_was_not_known_to_reason() -> None:
    message = explain_refusal(STOP_REFUSAL, "unsupported_parameter", "stop", "prod-deploy", policy="adapt")

    assert message is not None
    assert "`reasoning: true` under models: prod-deploy" in message


@pytest.mark.parametrize(
    ("text", "code", "param"),
    [
        ("The model `gpt-9` does not exist.", "model_not_found", None),
        ("Incorrect API key provided: sk-****.", "invalid_api_key", None),
        ("Error while downloading https://x/y.png.", "invalid_image_url", None),
        ("Unsupported parameter: 'stop' is not supported with this model.", "unsupported_parameter", None),
    ],
)
def test_other_errors_are_not_explained(text: str, code: str | None, param: str | None) -> None:
    assert explain_refusal(text, code, param, "gpt-5.5") is None


# -- against the simulator: strict is refused and explained, adapt is accepted ----------------


CASES: list[dict[str, Any]] = [
    {"temperature": 0, "max_tokens": 300},
    {"stop": ["\n\n"], "top_p": 0.1},
    {"presence_penalty": 0.2, "frequency_penalty": 0.2, "logprobs": True},
]


@pytest.fixture
def reasoning_server() -> Any:
    with OpenAISimulator(
        reasoning_models={"gpt-5.5": ReasoningRules(), "o1-mini": ReasoningRules(system_role=False)}
    ) as server:
        yield server


def send(server: OpenAISimulator, api: str, request: dict[str, Any]) -> httpx2.Response:
    if api == "responses":
        return httpx2.post(server.base_url + "/responses", json=build_request(request), timeout=5)
    return httpx2.post(server.base_url + "/chat/completions", json=request, timeout=5)


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("params", CASES, ids=["temperature-max_tokens", "stop-top_p", "penalties-logprobs"])
def test_strict_is_refused_with_a_fix_and_adapt_is_accepted(
    reasoning_server: OpenAISimulator, api: str, params: dict[str, Any]
) -> None:
    request = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "Capital of France?"}], **params}
    parse = parse_chat_completion if api == "chat" else parse_response

    strict, _ = adapt_params(request, api=api, reasoning=True, policy="strict")
    refused = send(reasoning_server, api, strict)
    with pytest.raises(ApiError) as info:
        parse(refused.content, status=refused.status_code, content_type=refused.headers.get("content-type"))
    error = info.value
    explanation = explain_refusal(error.message, error.code, error.param, "gpt-5.5")
    assert explanation is not None, error
    assert explanation.startswith("gpt-5.5: the ")
    assert f"{error.param}" in explanation
    assert "; fix: " in explanation

    adapted, changes = adapt_params(request, api=api, reasoning=True, policy="adapt")
    accepted = send(reasoning_server, api, adapted)
    assert accepted.status_code == 200, accepted.text
    reply = parse(accepted.content, status=200, content_type=accepted.headers.get("content-type"))
    assert reply.text == "[gpt-5.5] Capital of France?"
    assert {change.param for change in changes} <= set(params)


def test_system_message_for_o1_mini_adapted_to_developer(reasoning_server: OpenAISimulator) -> None:
    request = {
        "model": "o1-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }

    refused = send(reasoning_server, "chat", request)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == SYSTEM_REFUSAL

    adapted, _ = adapt_params(request, api="chat", reasoning=True, policy="adapt")
    assert send(reasoning_server, "chat", adapted).status_code == 200
