"""End to end: case files written the way promptfoo suites are (Jinja2 templates, file://
references, cases from CSV, a prompts: matrix, defaults.assert), against the loopback simulator.

Each "trap" test is a wrong verdict (or a wrong request) that the naive `{{name}}` substitution
gave without a word; the suite test records a promptfoo-style suite and replays it offline with
the same verdicts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_llmgate.simulator import OpenAISimulator

from .conftest import DEAD_BASE_URL

pytestmark = pytest.mark.usefixtures("fake_credentials")


@pytest.fixture(autouse=True)
def offline_tiktoken(monkeypatch: pytest.MonkeyPatch, tiktoken_cache_dir: Path) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir))


def record(pytester: pytest.Pytester, server: OpenAISimulator, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--llm-record-mode=once", f"--llm-base-url={server.base_url}", "-v", *args)


def replay(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(f"--llm-base-url={DEAD_BASE_URL}", "-v", *args)


def sent_messages(server: OpenAISimulator, model: str = "gpt-4o") -> list[list[dict[str, object]]]:
    return [request.json["messages"] for request in server.requests if request.model == model]


VERDICT = r"(PASSED|FAILED|XFAIL|XPASS|SKIPPED|ERROR)"
ALONE = re.compile(rf"^\S+\.yaml::(\S+) {VERDICT}\b")
WORKER = re.compile(rf"^\[gw\d+\] \[ *\d+%\] {VERDICT} \S+\.yaml::(\S+)")


def literal(pattern: str) -> str:
    """An fnmatch pattern in which `[` and `]` are literal (`assert[0]`), `*` still a wildcard."""
    return re.sub(r"[\[\]]", lambda match: f"[{match.group()}]", pattern)


def verdicts(result: pytest.RunResult) -> dict[str, str]:
    """Item name -> PASSED/FAILED/... from `-v` lines, with or without xdist."""
    found: dict[str, str] = {}
    for line in result.outlines:
        if match := ALONE.match(line):
            found[match.group(1)] = match.group(2)
        elif match := WORKER.match(line):
            found[match.group(2)] = match.group(1)
    return found


# --- the silent traps ---------------------------------------------------------------------------


def test_var_in_an_assertion_value_is_rendered(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """`icontains: '{{expected}}'` was compared literally and failed on the right answer."""
    pytester.makefile(
        ".yaml",
        llm_capital="""\
baseline: gpt-4o
cases:
  - id: france
    prompt: "Capital of {{country}}?"
    vars: {country: France, expected: paris, wrong: berlin}
    assert:
      - {type: icontains, value: '{{expected}}'}
      - {type: not-icontains, value: '{{ wrong }}'}
""",
    )
    openai_server.add_rule(contains="France", content="The capital is Paris.")
    result = record(pytester, openai_server)
    result.assert_outcomes(passed=1)
    assert sent_messages(openai_server) == [[{"role": "user", "content": "Capital of France?"}]]


def test_undefined_var_in_a_negated_assertion_is_a_collection_error(pytester: pytest.Pytester) -> None:
    """`not-contains: '{{forbidden}}'` passed although no such var exists: now nothing runs."""
    pytester.makefile(
        ".yaml",
        llm_forbidden="""\
baseline: gpt-4o
cases:
  - id: safe
    prompt: "Say something about {{topic}}"
    vars: {topic: cats}
    assert:
      - {type: not-contains, value: '{{forbidden}}'}
""",
    )
    result = replay(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            literal(
                "*llm_forbidden.yaml:7: case 'safe': field 'assert[0].value': 'forbidden' is undefined "
                "(vars defined: topic)*"
            )
        ]
    )


def test_the_judge_is_asked_about_the_rendered_rubric(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llm_rubric="""\
baseline: gpt-4o
cases:
  - id: poem
    prompt: "Write two lines about {{topic}}"
    vars: {topic: lighthouses}
    assert:
      - {type: llm-rubric, value: "The text is about {{ topic }}."}
""",
    )
    openai_server.add_rule(model="gpt-4o", content="A beam sweeps the sea.")
    openai_server.add_rule(
        model="judge-model",
        contains="about lighthouses.",
        content='{"pass": true, "score": 1, "reason": "ok"}',
    )
    openai_server.add_rule(
        model="judge-model", content='{"pass": false, "score": 0, "reason": "wrong topic"}'
    )
    result = record(pytester, openai_server, "--llm-judge=judge-model")
    result.assert_outcomes(passed=1)
    (judge_prompt,) = [messages[0]["content"] for messages in sent_messages(openai_server, "judge-model")]
    assert "The text is about lighthouses." in str(judge_prompt)
    assert "{{" not in str(judge_prompt)


def test_filters_attributes_and_loops_reach_the_model_rendered(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    pytester.makefile(
        ".yaml",
        llm_jinja="""\
baseline: gpt-4o
defaults:
  vars:
    style: {tone: formal, length: short}
cases:
  - id: letter
    system: "Write in a {{ style.tone }} tone."
    prompt: |-
      Items: {% for item in items %}{{ item | upper }}{% if not loop.last %}, {% endif %}{% endfor %}
      Literal: {% raw %}{{ not a var }}{% endraw %}
    vars: {items: [pen, ink]}
""",
    )
    record(pytester, openai_server).assert_outcomes(passed=1)
    assert sent_messages(openai_server) == [
        [
            {"role": "system", "content": "Write in a formal tone."},
            {"role": "user", "content": "Items: PEN, INK\nLiteral: {{ not a var }}"},
        ]
    ]


def test_template_syntax_error_names_file_line_case_and_field(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        llm_broken="""\
baseline: gpt-4o
cases:
  - id: ok
    prompt: fine
  - id: broken
    prompt: "Hello {{ name "
    vars: {name: Ada}
""",
    )
    result = replay(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*llm_broken.yaml:6: case 'broken': field 'prompt': template syntax error: *"]
    )


def test_file_reference_in_a_var_sends_the_file(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    """`schema: file://database.sql` was sent as the literal string `file://database.sql`."""
    (pytester.path / "database.sql").write_text("CREATE TABLE users (id INTEGER, name TEXT);\n")
    pytester.makefile(
        ".yaml",
        llm_sql="""\
baseline: gpt-4o
cases:
  - id: query
    prompt: "Schema:\\n{{schema}}\\nWrite a query listing user names."
    vars: {schema: file://database.sql}
""",
    )
    record(pytester, openai_server).assert_outcomes(passed=1)
    assert sent_messages(openai_server) == [
        [
            {
                "role": "user",
                "content": "Schema:\nCREATE TABLE users (id INTEGER, name TEXT);\n\n"
                "Write a query listing user names.",
            }
        ]
    ]


def test_data_vars_render_as_json(pytester: pytest.Pytester, openai_server: OpenAISimulator) -> None:
    """Dicts, lists, booleans and null rendered as Python repr (`{'tone': 'formal'}`, True, None)."""
    pytester.makefile(
        ".yaml",
        llm_json="""\
baseline: gpt-4o
cases:
  - id: data
    prompt: "cfg={{cfg}} tags={{tags}} on={{on}} none={{nothing}} n={{n}} dumped={{ cfg | dump }}"
    vars: {cfg: {tone: formal}, tags: [a, b], "on": true, nothing: null, n: 1.5}
""",
    )
    record(pytester, openai_server).assert_outcomes(passed=1)
    (messages,) = sent_messages(openai_server)
    assert messages[0]["content"] == (
        'cfg={"tone": "formal"} tags=["a", "b"] on=true none=null n=1.5 dumped={"tone": "formal"}'
    )


def test_file_outside_the_project_or_missing_is_a_collection_error(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.txt"
    outside.write_text("not for prompts")
    pytester.makefile(
        ".yaml",
        llm_outside=f"""\
baseline: gpt-4o
cases:
  - id: leak
    prompt: file://{outside}
""",
        llm_missing="""\
baseline: gpt-4o
cases:
  - id: gone
    prompt: file://prompts/nowhere.txt
""",
    )
    result = replay(pytester)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            f"*llm_missing.yaml:4: case 'gone': field 'prompt': file://prompts/nowhere.txt: no such file "
            f"{pytester.path / 'prompts' / 'nowhere.txt'}*",
            f"*llm_outside.yaml:4: case 'leak': field 'prompt': file://{outside} resolves to {outside}, "
            f"outside the project root {pytester.path}*",
        ]
    )


def test_editing_a_referenced_prompt_file_makes_the_recording_stale(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    prompt = pytester.path / "prompts" / "greet.txt"
    prompt.parent.mkdir()
    prompt.write_text("Greet {{name}} warmly.")
    pytester.makefile(
        ".yaml",
        llm_greet="""\
baseline: gpt-4o
cases:
  - id: hello
    prompt: file://prompts/greet.txt
    vars: {name: Ada}
""",
    )
    record(pytester, openai_server).assert_outcomes(passed=1)
    assert sent_messages(openai_server) == [[{"role": "user", "content": "Greet Ada warmly."}]]
    openai_server.stop()
    replay(pytester).assert_outcomes(passed=1)
    prompt.write_text("Greet {{name}} coldly.")
    stale = replay(pytester)
    stale.assert_outcomes(failed=1)
    stale.stdout.fnmatch_lines(["*the recording is stale*"])


# --- a promptfoo-style suite, recorded and replayed ---------------------------------------------

SUITE = """\
baseline: gpt-4o
prompts:
  - file://prompts/brief.txt
  - id: chat
    messages:
      - {role: system, content: "You answer in a {{ style.tone }} tone."}
      - {role: user, content: "{{ question | upper }}"}
defaults:
  vars:
    style: {tone: formal}
  assert:
    - {type: icontains, value: "{{ expected }}"}
cases:
  - file://tests.csv
  - id: city-json
    prompt: "Give {{ question }} as JSON"
    vars: {question: the city of Paris, expected: paris}
    assert:
      - {type: is-json, value: file://schemas/city.json}
"""

CSV = """\
question,expected,wrong,__expected,__expected1,__description
What is the capital of France?,paris,munich,icontains: capital,not-icontains: {{ wrong }},France capital
What is the capital of Germany?,berlin,paris,"icontains-any: berlin,bonn",,Germany capital
"""

SCHEMA = {
    "type": "object",
    "required": ["city"],
    "properties": {"city": {"type": "string", "enum": ["Paris"]}},
}


def write_suite(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "brief.txt").write_text("Answer briefly: {{ question }}")
    (pytester.path / "schemas").mkdir()
    (pytester.path / "schemas" / "city.json").write_text(json.dumps(SCHEMA))
    (pytester.path / "tests.csv").write_text(CSV)
    pytester.makefile(".yaml", llm_suite=SUITE)


def script(server: OpenAISimulator) -> None:
    """The baseline answers right; the candidate gets Germany wrong and breaks the JSON."""
    server.add_rule(model="gpt-5.5", contains="GERMANY", content="The capital is Munich.")
    server.add_rule(model="gpt-5.5", contains="JSON", content="Paris!")
    server.add_rule(contains="France", content="The capital is Paris.")
    server.add_rule(contains="FRANCE", content="THE CAPITAL IS PARIS.")
    server.add_rule(contains="Germany", content="The capital is Berlin.")
    server.add_rule(contains="GERMANY", content="The capital is Berlin.")
    server.add_rule(contains="JSON", content='{"city": "Paris"}')


EXPECTED = {
    "france-capital[brief]": "PASSED",
    "france-capital[chat]": "PASSED",
    "germany-capital[brief]": "PASSED",
    "germany-capital[chat]": "FAILED",
    "city-json": "FAILED",
}


def test_promptfoo_style_suite_records_and_replays_with_identical_verdicts(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    write_suite(pytester)
    script(openai_server)
    recorded = record(pytester, openai_server, "--llm-candidate=gpt-5.5")
    recorded_verdicts = verdicts(recorded)
    assert {name: verdict for name, verdict in recorded_verdicts.items() if "gate[" not in name} == EXPECTED
    recorded.stdout.fnmatch_lines([literal("*case 'germany-capital[chat]': regression*")])
    # What the model saw: the prompt file and the chat prompt, rendered with each row's vars.
    seen = [json.dumps(messages) for messages in sent_messages(openai_server)]
    assert json.dumps([{"role": "user", "content": "Answer briefly: What is the capital of France?"}]) in seen
    chat = [
        {"role": "system", "content": "You answer in a formal tone."},
        {"role": "user", "content": "WHAT IS THE CAPITAL OF GERMANY?"},
    ]
    assert json.dumps(chat) in seen
    folders = sorted(path.name for path in (pytester.path / "cassettes" / "llm_suite").iterdir())
    assert folders == sorted(EXPECTED)
    openai_server.stop()
    for workers in ([], ["-n", "2"]):
        replayed = replay(pytester, "--llm-candidate=gpt-5.5", *workers)
        assert verdicts(replayed) == recorded_verdicts, workers
        assert replayed.ret == recorded.ret == pytest.ExitCode.TESTS_FAILED


def test_k_selects_one_prompt_of_the_matrix(
    pytester: pytest.Pytester, openai_server: OpenAISimulator
) -> None:
    write_suite(pytester)
    script(openai_server)
    result = record(pytester, openai_server, "-k", "chat")
    assert sorted(verdicts(result)) == ["france-capital[chat]", "germany-capital[chat]"]
    result = record(pytester, openai_server, "-k", "germany-capital[brief]")
    assert sorted(verdicts(result)) == ["germany-capital[brief]"]


def test_an_error_in_a_csv_row_names_the_file_and_row(pytester: pytest.Pytester) -> None:
    (pytester.path / "tests.csv").write_text(
        "question,__expected\nfine?,contains: yes\nbad?,javascript: output.length > 3\n"
    )
    pytester.makefile(
        ".yaml", llm_rows="baseline: gpt-4o\ndefaults: {prompt: '{{question}}'}\ncases: file://tests.csv\n"
    )
    result = replay(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*{pytester.path / 'tests.csv'}:3: row 3, column __expected: javascript: JavaScript assertions "
            "are not supported; write the check in Python*"
        ]
    )
