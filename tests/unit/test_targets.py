"""Targets: parsing `models:` entries, resolving names, and where each call goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmgate.cases import load_yaml_with_lines
from pytest_llmgate.errors import CaseFileError
from pytest_llmgate.model.targets import (
    AzureDeployment,
    Target,
    TargetPrice,
    Targets,
    missing_live_keys,
    parse_targets,
    resolve_targets,
    with_target_prices,
)
from pytest_llmgate.model.wire import canonical_uri, operation_of, request_body
from pytest_llmgate.pricing import PriceTable

PATH = Path("llmgate.yaml")
# Assembled at run time so that secret scanners of the repository do not flag this fake.
KEY_SHAPED = "-".join(("sk", "proj", "abcdefghijklmnopqrstu"))


def parse(text: str) -> Targets:
    return parse_targets(load_yaml_with_lines(text, PATH)["models"], PATH)


def test_a_full_azure_entry_resolves_to_its_deployment_url_query_and_header() -> None:
    targets = parse(
        """
models:
  gpt-4o:
    model: gpt-4o-2024-08-06
    base_url: https://example.openai.azure.com
    api_key_env: AZURE_OPENAI_API_KEY
    azure: {deployment: gpt4o-prod, api_version: "2024-10-21"}
    headers: {x-team: search}
    params: {temperature: 0}
    price: {input: 2.5, cached_input: 1.25, output: 10.0, per_request: 0.001}
    concurrency: 4
"""
    )
    target = targets.resolve("gpt-4o")
    assert target.model == "gpt-4o-2024-08-06"
    assert target.declared_at == "llmgate.yaml:4"
    assert target.price == TargetPrice(input=2.5, output=10.0, cached_input=1.25, per_request=0.001)
    assert target.concurrency == 4
    assert dict(target.params) == {"temperature": 0}
    endpoint = target.endpoint("chat/completions", "http://ignored.example/v1")
    assert endpoint.url == "https://example.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions"
    assert dict(endpoint.query) == {"api-version": "2024-10-21"}
    assert endpoint.auth_header == "api-key"
    assert dict(endpoint.headers) == {"x-team": "search"}
    assert target.api_key({"AZURE_OPENAI_API_KEY": "k" * 20, "OPENAI_API_KEY": "other"}) == "k" * 20


def test_an_azure_base_url_ending_in_openai_is_not_doubled() -> None:
    azure = AzureDeployment("d", "2024-10-21")
    target = Target("t", "m", base_url="https://x.openai.azure.com/openai/", azure=azure)
    assert target.endpoint("chat/completions", None).url == (
        "https://x.openai.azure.com/openai/deployments/d/chat/completions"
    )


def test_an_undeclared_name_is_a_bare_target_at_the_session_endpoint() -> None:
    target = Targets().resolve("gpt-5.5")
    assert target == Target.bare("gpt-5.5")
    assert target.model == "gpt-5.5"
    endpoint = target.endpoint("chat/completions", "http://127.0.0.1:8000/v1/")
    assert endpoint.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert endpoint.auth_header == "Authorization"
    assert target.endpoint("chat/completions", None).url == "https://api.openai.com/v1/chat/completions"
    assert target.api_key({}) is None
    assert "export OPENAI_API_KEY=" in target.missing_key_message()


def test_the_file_scope_wins_over_the_project_scope() -> None:
    project = parse("models:\n  fast: {model: gpt-4o-mini}\n  big: {model: gpt-4o}\n")
    file = parse("models:\n  fast: {model: llama-3.1-8b, base_url: 'http://127.0.0.1:11434/v1'}\n")
    assert project.resolve("fast", file).model == "llama-3.1-8b"
    assert project.resolve("big", file).model == "gpt-4o"
    assert project.resolve("other", file) == Target.bare("other")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{modle: x}", "unknown key 'modle' (did you mean 'model'?)"),
        ("{api_key: abc}", "a literal API key does not belong in a file"),
        (f"{{api_key_env: '{KEY_SHAPED}'}}", "that looks like a key itself"),
        ("{base_url: 'ftp://x'}", "base_url must be an http(s) URL"),
        ("{base_url: 'https://user:pw@x.example'}", "must not carry credentials"),
        ("{headers: {Authorization: 'Bearer abc'}}", "carries a credential"),
        (f"{{headers: {{x-echo: '{KEY_SHAPED}'}}}}", "carries a credential"),
        ("{azure: {deployment: d}}", "azure.api_version is required"),
        ("{azure: {deployment: d, api_version: v, region: x}}", "unknown key 'region'"),
        ("{price: {input: 1}}", "price.output is required"),
        ("{price: {input: -1, output: 1}}", "price.input must be a number >= 0"),
        ("{price: {input: .nan, output: 1}}", "price.input must be a number >= 0"),
        ("{price: {inptu: 1, output: 1}}", "(did you mean 'input'?)"),
        ("{concurrency: 0}", "concurrency must be a whole number >= 1"),
        ("{params: {model: x}}", "params must not set model"),
        ("[1, 2]", "must be a mapping"),
    ],
)
def test_a_bad_entry_names_the_file_line_field_and_fix(entry: str, message: str) -> None:
    with pytest.raises(CaseFileError) as info:
        parse(f"models:\n  gpt-4o: {entry}\n")
    text = str(info.value)
    assert message in text
    assert text.startswith("llmgate.yaml:2")
    assert KEY_SHAPED not in text


def test_models_must_be_a_mapping() -> None:
    with pytest.raises(CaseFileError, match="models must map a target name"):
        parse("models: [gpt-4o]\n")


def test_an_empty_entry_is_a_bare_target_declared_where_written() -> None:
    target = parse("models:\n  gpt-4o:\n").resolve("gpt-4o")
    assert target.model == "gpt-4o"
    assert target.declared_at == "llmgate.yaml:2"


# --- wire: what a request is, wherever it is sent -----------------------------------------------


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/v1/chat/completions", "chat/completions"),
        ("/openai/v1/chat/completions/", "chat/completions"),
        ("/openai/deployments/gpt4o-prod/chat/completions", "chat/completions"),
        ("/chat/completions", "chat/completions"),
        ("/v1/responses", "responses"),
        ("/v1/models", None),
        ("/v1/completions", None),
    ],
)
def test_the_operation_of_a_path_ignores_the_base_path(path: str, operation: str | None) -> None:
    assert operation_of(path) == operation


def test_a_canonical_uri_keeps_no_host_port_or_base_path_but_keeps_the_query() -> None:
    assert canonical_uri("http://127.0.0.1:53211/openai/deployments/x/chat/completions?api-version=1") == (
        "https://llmgate.invalid/chat/completions?api-version=1"
    )
    assert canonical_uri("https://api.groq.com/openai/v1/chat/completions") == (
        "https://llmgate.invalid/chat/completions"
    )


def test_the_request_body_merges_extra_body_and_drops_sdk_only_keys() -> None:
    request = {
        "model": "m",
        "messages": [],
        "extra_body": {"top_k": 5},
        "extra_query": {"a": "b"},
        "extra_headers": {"x": "y"},
        "timeout": 3.0,
    }
    assert request_body(request) == {"model": "m", "messages": [], "top_k": 5}


# --- prices and keys of resolved targets ---------------------------------------------------------


def test_a_target_price_wins_and_an_unpriced_alias_costs_what_its_model_costs() -> None:
    targets = resolve_targets(
        ["gpt-4o", "gpt-5.5-high", "mine", None],
        parse(
            "models:\n  gpt-5.5-high: {model: gpt-5.5}\n"
            "  mine: {price: {input: 1, output: 2, per_request: 0.5}}\n"
        ),
        Targets(),
    )
    assert set(targets) == {"gpt-4o", "gpt-5.5-high", "mine"}
    table = with_target_prices(PriceTable.builtin(), targets)
    assert table.lookup("gpt-5.5-high") == table.lookup("gpt-5.5")
    mine = table.lookup("mine")
    assert mine is not None
    assert (mine.input, mine.output, mine.per_request) == (1.0, 2.0, 0.5)
    assert table.lookup("gpt-4o") == PriceTable.builtin().lookup("gpt-4o")


def test_only_targets_naming_their_own_key_variable_need_it_set_for_a_live_run() -> None:
    targets = resolve_targets(
        ["a", "b", "c"], parse("models:\n  a: {api_key_env: A_KEY}\n  b: {api_key_env: B_KEY}\n"), Targets()
    )
    assert [target.name for target in missing_live_keys(targets, {"B_KEY": "x" * 20})] == ["a"]


def test_a_misspelt_target_param_is_caught_with_file_line_and_the_fix() -> None:
    """As a case's params are: `temprature` would otherwise reach the API on the first live call
    (a 400) or, on a lenient provider, be ignored and the run judged without it."""
    with pytest.raises(CaseFileError) as caught:
        parse("models:\n  cold:\n    model: gpt-4o\n    params: {temprature: 0}\n")
    message = caught.value.render()
    assert "llmgate.yaml:3" in message
    assert "unknown parameter 'temprature' (did you mean 'temperature'?)" in message
    assert "params: {extra_body: {temprature: ...}}" in message
    # The names both wire formats know, and vendor fields under extra_body, pass.
    targets = parse(
        "models:\n  warm:\n    model: gpt-4o\n"
        "    params: {temperature: 0.2, max_output_tokens: 50, extra_body: {top_k: 40}}\n"
    )
    assert dict(targets.resolve("warm").params)["extra_body"] == {"top_k": 40}
