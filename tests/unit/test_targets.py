"""Targets: parsing `models:` entries, resolving names, and where each call goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmgate.cases import load_yaml_with_lines
from pytest_llmgate.errors import CaseFileError
from pytest_llmgate.model.targets import AzureDeployment, Target, TargetPrice, Targets, parse_targets

PATH = Path("llmgate.yaml")


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
        ("{api_key_env: 'sk-proj-abcdefghijklmnopqrstu'}", "that looks like a key itself"),
        ("{base_url: 'ftp://x'}", "base_url must be an http(s) URL"),
        ("{base_url: 'https://user:pw@x.example'}", "must not carry credentials"),
        ("{headers: {Authorization: 'Bearer abc'}}", "carries a credential"),
        ("{headers: {x-echo: 'sk-proj-abcdefghijklmnopqrstu'}}", "carries a credential"),
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
    assert "sk-proj-abcdefghijklmnopqrstu" not in text


def test_models_must_be_a_mapping() -> None:
    with pytest.raises(CaseFileError, match="models must map a target name"):
        parse("models: [gpt-4o]\n")


def test_an_empty_entry_is_a_bare_target_declared_where_written() -> None:
    target = parse("models:\n  gpt-4o:\n").resolve("gpt-4o")
    assert target.model == "gpt-4o"
    assert target.declared_at == "llmgate.yaml:2"
