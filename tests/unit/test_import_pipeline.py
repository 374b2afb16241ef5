"""`import_traffic` end to end without pytest: the case file, the baseline recordings, the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_llmgate.cases import load_case_file
from pytest_llmgate.cassettes import cassette_path
from pytest_llmgate.cli import main
from pytest_llmgate.importers.pipeline import ImportReport, TrafficOptions, import_traffic
from pytest_llmgate.replay import ReplayCassettes, ReplayClient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traffic"
CALLS = FIXTURES / "calls.jsonl"
FAKE_KEY = "-".join(("sk", "proj", "FAKEKEYllmgate0123456789abcdef"))


def run(tmp_path: Path, *sources: Path, **options: Any) -> tuple[Path, ImportReport]:
    output = tmp_path / "llm_traffic.yaml"
    report = import_traffic(TrafficOptions(sources=sources or (CALLS,), output=output, **options))
    return output, report


def test_cases_recordings_and_counts(tmp_path: Path) -> None:
    output, report = run(tmp_path)
    assert (report.imported, report.duplicates, report.skipped) == (5, 1, 3)
    case_file = load_case_file(output)
    assert case_file.baseline == "gpt-4o"
    ids = [case.id for case in case_file.cases]
    assert len(ids) == 5
    # Every baseline recording replays, with no network, the production answer for exactly the
    # request the case sends.
    client = ReplayClient("http://127.0.0.1:9/v1")
    texts = {}
    for case in case_file.cases:
        path = cassette_path(tmp_path / "cassettes", "llm_traffic", case.id, "gpt-4o")
        with ReplayCassettes().use(path):
            reply = client.complete(case.request_for("gpt-4o"))
        texts[case.id] = reply.text or reply.tool_calls[0].name
    assert sorted(texts.values()) == sorted(
        [
            "Refunds are accepted within 30 days; we will write to [EMAIL_1].",
            '{"vendor": "ACME Corp", "total": 1234.5, "currency": "EUR", "card": "[CARD_1]"}',
            "route_ticket",
            "Paris.",
            "Our office opens at 9am.",
        ]
    )


def test_recorded_latency_comes_from_the_log(tmp_path: Path) -> None:
    output, _ = run(tmp_path)
    case = next(case for case in load_case_file(output).cases if case.id.startswith("how-long"))
    path = cassette_path(tmp_path / "cassettes", "llm_traffic", case.id, "gpt-4o")
    data = yaml.safe_load(path.read_text())
    response = data["interactions"][0]["response"]
    assert response["headers"]["x-llmgate-latency-ms"] == ["420.5"]
    assert "authorization" not in json.dumps(data["interactions"][0]["request"]).lower()


def test_duplicates_are_folded_and_counted(tmp_path: Path) -> None:
    output, _ = run(tmp_path)
    text = output.read_text()
    assert "description: production traffic, seen 2 times" in text
    case = next(case for case in load_case_file(output).cases if case.id.startswith("how-long"))
    assert case.weight == 2.0  # a real key: the duplicate counts twice in the quality score
    assert "# weight" not in text
    assert "user" not in case.params  # the end-user id differed between the two calls and is dropped


def test_generated_assertions_follow_the_answer_and_are_commented(tmp_path: Path) -> None:
    output, _ = run(tmp_path)
    cases = {case.id.rsplit("-", 1)[0]: case for case in load_case_file(output).cases}
    kinds = {name: [spec.type for spec in case.assertions] for name, case in cases.items()}
    assert kinds["i-was-charged-twice-call"] == ["tool-call", "not-finish-reason"]
    assert kinds["invoice-from-acme-corp-total"] == ["is-json", "fields", "not-finish-reason"]
    assert kinds["how-long-is-the-refund"] == ["not-refusal", "pairwise", "not-finish-reason"]
    text = output.read_text()
    assert text.count("# generated from the production answer") == 14  # pairwise on the 3 text answers
    assert "      # - type: factuality" in text  # the production answer as reference: suggested, not active


def test_redaction_is_consistent_between_request_and_answer(tmp_path: Path) -> None:
    output, report = run(tmp_path)
    written = "".join(path.read_text() for path in [output, *(tmp_path / "cassettes").rglob("*.yaml")])
    for value in ("jane.doe@example.com", "4111 1111 1111 1111", "DE89 3704", "1234 5678", "192.168.10.24"):
        assert value not in written
    assert "Reply to [EMAIL_1] please" in written
    assert "write to [EMAIL_1]" in written
    assert report.redaction == "redacted: 1 email (3 times), 1 iban, 1 card (2 times), 1 phone, 1 ip"


def test_no_redact_keeps_personal_data(tmp_path: Path) -> None:
    output, _ = run(tmp_path, redact=False)
    assert "jane.doe@example.com" in output.read_text()


def test_a_planted_key_never_reaches_a_file_even_with_no_redact(tmp_path: Path) -> None:
    source = tmp_path / "leaky.jsonl"
    line = {
        "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": f"my key is {FAKE_KEY}"}]},
        "response": {
            "object": "chat.completion",
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"Never share {FAKE_KEY}!"},
                    "finish_reason": "stop",
                }
            ],
        },
    }
    source.write_text(json.dumps(line) + "\n")
    run(tmp_path, source, redact=False)
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path != source]
    assert len(written) == 2
    assert not [path for path in written if FAKE_KEY in path.read_text()]


def test_filters_by_time_and_tag(tmp_path: Path) -> None:
    _, report = run(tmp_path, since=1746057600.0, until=1746230400.0)  # 2025-05-01 .. 2025-05-03
    assert (report.imported, report.filtered) == (2, 4)
    _, report = run(tmp_path / "b", tags=("routing", "geo"))
    assert (report.imported, report.filtered) == (2, 6)


def test_sampling_is_stratified_and_repeatable(tmp_path: Path) -> None:
    chosen = []
    for attempt in range(2):
        output, report = run(tmp_path / str(attempt), sample=3, seed=7)
        assert (report.imported, report.unsampled) == (3, 2)
        chosen.append([case.id for case in load_case_file(output).cases])
    assert chosen[0] == chosen[1]
    # 5 distinct requests in 4 tags (support x2): 3 picks never take both support cases first.
    tags = [case.tags for case in load_case_file(tmp_path / "0" / "llm_traffic.yaml").cases]
    assert len({tag for tag_tuple in tags for tag in tag_tuple}) == 3


def test_model_option_imports_the_other_model(tmp_path: Path) -> None:
    output, report = run(tmp_path, model="gpt-4o-mini")
    assert report.imported == 1
    assert load_case_file(output).baseline == "gpt-4o-mini"


def test_existing_output_is_kept_without_force(tmp_path: Path) -> None:
    output = tmp_path / "llm_traffic.yaml"
    output.write_text("keep me")
    _, report = run(tmp_path)
    assert report.error is not None
    assert report.error.endswith("llm_traffic.yaml exists; pass --force to replace it")
    assert output.read_text() == "keep me"
    assert not (tmp_path / "cassettes").exists()
    _, report = run(tmp_path, force=True)
    assert report.imported == 5


def test_nothing_importable_writes_nothing_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "llm_x.yaml"
    assert main(["import", "traffic", str(FIXTURES / "unknown.txt"), "-o", str(output)]) == 1
    assert list(tmp_path.iterdir()) == []
    out = capsys.readouterr().out
    assert "unknown format" in out
    assert "llmgate import traffic: 0 imported, 0 duplicate, 1 skipped" in out
    assert "error: no call could be imported; nothing was written" in out


def test_template_braces_in_prompts_stay_literal(tmp_path: Path) -> None:
    source = tmp_path / "t.jsonl"
    request = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Fill {{name}} and {{ city }} please"}],
    }
    response = {
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    }
    source.write_text(json.dumps({"request": request, "response": response}) + "\n")
    output, report = run(tmp_path, source)
    assert report.imported == 1
    case = load_case_file(output).cases[0]
    assert case.request_for("gpt-4o")["messages"] == request["messages"]


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as top:
        main(["--help"])
    assert top.value.code == 0
    assert "import" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["import", "traffic", "--help"])
    text = capsys.readouterr().out
    for needle in ("--sample N", "--no-redact", "OpenAI Batch API", "OpenTelemetry GenAI", "Luhn"):
        assert needle in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "'yesterday' is not a date or time"),
        (["--sample", "0"], "expected a whole number >= 1"),
        (["--redact", "("], "is not a regular expression"),
        (["--since", "2025-05-02", "--until", "2025-05-01"], "--since must be earlier than --until"),
    ],
)
def test_bad_options_fail_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["import", "traffic", str(CALLS), "-o", str(tmp_path / "llm_x.yaml"), *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
