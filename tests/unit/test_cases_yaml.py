"""Case-file YAML: the event builder (fast) and the node path (the reference) give the same result.

`load_yaml_with_lines` builds a document straight from the parser's events and hands anything
it does not build exactly the same way (errors, rare tags, alias bombs) to the node path. These
tests hold the two to the same output, mappings' lines and shared aliases included, on libyaml's
parser and on PyYAML's pure-Python one, and on documents written to be awkward.
"""

from __future__ import annotations

import datetime
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_llmgate import cases
from pytest_llmgate.cases import ALIAS_EXPANSION_LIMIT, LineDict, load_yaml_with_lines, parse_case_file
from pytest_llmgate.errors import CaseFileError

LOADERS = [pytest.param(cases._PyLineLoader, id="pure-python")]
if yaml.__with_libyaml__:
    LOADERS.append(pytest.param(cases._LineLoader, id="libyaml"))


def shape(value: Any, seen: dict[int, int] | None = None) -> Any:
    """Everything a consumer can observe: types, order, LineDict lines and key lines, and which
    containers are one shared object (an alias), numbered by first appearance."""
    seen = {} if seen is None else seen
    if isinstance(value, (dict, list)):
        if id(value) in seen:
            return ("same as", seen[id(value)])
        seen[id(value)] = len(seen)
        if isinstance(value, list):
            return ("list", [shape(item, seen) for item in value])
        lines = (value.line, dict(value.key_lines)) if isinstance(value, LineDict) else None
        items = [(shape(key, seen), shape(item, seen)) for key, item in value.items()]
        return (type(value).__name__, lines, items)
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, repr(value))


def outcome(text: str, loader: Any, from_events: bool) -> Any:
    try:
        return ("ok", shape(cases._load_yaml(text, loader, from_events=from_events)))
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc))


def assert_same(text: str, loader: Any) -> Any:
    expected = outcome(text, loader, from_events=False)
    assert outcome(text, loader, from_events=True) == expected
    return expected


def built_from_events(text: str, loader: Any) -> Any:
    """The event builder's own result: these documents must not need the node path."""
    return cases._build_from_events(loader(text))


# Documents the event builder builds itself.
BUILT_FROM_EVENTS = {
    "case file": """\
baseline: gpt-4o
defaults:
  params: {temperature: 0, max_tokens: 300}
cases:
  - id: a
    prompt: "Invoice 1, total 7 EUR"
    tags: [extraction]
    assert:
      - {type: icontains, value: acme}
      - type: max-length
        value: 2000
""",
    "merge keys": """\
base: &base {a: 1, b: 2}
other: &other {b: 3, c: 4}
one:
  <<: *base
  a: 9
list:
  x: 0
  <<: [*other, *base]
inline:
  <<: {z: 1}
twice:
  <<: *base
  k: v
  <<: *other
nested:
  inner: &inner
    <<: *base
    d: 5
  again:
    <<: *inner
    a: 0
""",
    "anchors and aliases": """\
scalar: &s hello
list: &l [1, 2, *s]
map: &m {k: *l, j: *s}
uses: [*s, *l, *m, *m]
*s : an alias as a key
""",
    "multi-line strings": """\
literal: |
  line one
    indented
  line three
folded: >
  folded
  text

  paragraph
keep: |+
  kept

strip: |-
  stripped
quoted: "a\\tb\\n\\u00e9 \\"q\\""
single: 'it''s'
plain multi: this plain
  scalar continues
""",
    "tabs and unicode": "tab: '\tinside'\nunicode: 'héllo wörld ✓ 日本語 🚀'\n"
    "ключ: значение\n'\t': tab key\n",
    "scalars of every type": """\
ints: [0, -1, +3, 0x1F, 0o17, 017, 1_000, '12', 1:30, 0b101]
floats: [1.5, -0.5, .inf, -.Inf, .NaN, 1e3, 1.0e+3, 6.8523015e+5, 190:20:30.15]
bools: [yes, No, TRUE, off, On, y, n]
nulls: [~, null, Null, '', "~"]
dates: [2001-12-14, 2001-12-14t21:59:43.10-05:00, 2001-12-14 21:59:43.10 -5, 2002-12-14]
keys: {2: int, 2.5: float, true: bool, null: none, 2001-12-14: date}
explicit: [!!str 123, !!int "12", !!float "1", !!bool "yes", !!null "", ! 12, !!binary aGVsbG8=]
collection tags: !!map {a: !!seq [1], b: ! {c: 1}}
""",
    "a merge key through an alias": "x: {&m <<: {a: 1}, b: 2}\ny: {*m : {c: 3}, d: 4}\n",
    "flow and complex keys": "{a: [1, {b: c}], 'd': [], e: {}, ? f : g, h: }\n",
    "comments and markers": "%YAML 1.1\n---\n# a comment\na: 1  # trailing\n...\n",
    "tag directive": "%TAG !e! tag:yaml.org,2002:\n---\na: !e!str 12\n",
    "top-level list": "- a\n- {b: 1}\n- [c]\n",
    "top-level scalar": "just text\n",
    "empty": "",
    "only a comment": "# nothing\n",
    "empty document": "---\n",
    "null document": "~\n",
    "nested fifty deep": "{a: " * 50 + "1" + "}" * 50 + "\n",
}

# Documents the node path builds or reports: the event builder must hand them over.
FOR_THE_NODE_PATH = {
    "duplicate key": "cases:\n  - id: a\n    prompt: x\n    prompt: y\n",
    "duplicate flow key": "a: {b: 1, b: 2}\n",
    "equal keys of two types": "1: a\n1.0: b\n",
    "true and 1": "1: a\ntrue: b\n",
    "duplicate beside a merge": "p: &p {t: 0}\nq:\n  <<: *p\n  s: 1\n  s: 2\n",
    "duplicate alias key": "a: &k x\n*k : 1\nx: 2\n",
    "syntax error": "cases:\n  - id: a\n    prompt: [unclosed\n",
    "tab indentation": "a:\n\tb: 1\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
    "unclosed quote": 'a: "open\n',
    "undefined alias": "a: *nowhere\n",
    "duplicate anchor": "a: &x 1\nb: &x 2\nc: *x\n",
    "recursive alias": "a: &v {self: *v}\n",
    "recursive list": "a: &l [1, *l]\n",
    "merge of a scalar": "a: 1\n<<: 1\n",
    "merge of a list of scalars": "a: 1\n<<: [x]\n",
    "merge of null": "<<: \na: 1\n",
    "a merge key as a value": "a: <<\n",
    "a merge key in a list": "- <<\n",
    "python tag": "a: !!python/object/apply:os.system ['echo pwned']\n",
    "unknown local tag": "a: !custom 1\n",
    "set": "a: !!set {x, y}\n",
    "omap": "a: !!omap [x: 1, y: 2]\n",
    "pairs": "a: !!pairs [x: 1, x: 2]\n",
    "str tag on a mapping": "a: !!str {b: 1}\n",
    "set tag on a scalar": "a: !!set abc\n",
    "seq tag on a scalar": "a: !!seq abc\n",
    "map tag on a scalar": "a: !!map abc\n",
    "bad int": "a: !!int abc\n",
    "bad bool": "a: !!bool maybe\n",
    "bad timestamp": "a: !!timestamp yesterday\n",
    "value tag": "a: =\n",
    "list as key": "? [a, b]\n: c\n",
    "mapping as key": "? {a: 1}\n: c\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "two empty documents": "---\n---\n",
    "deep nesting": "{a: " * 51 + "1" + "}" * 51 + "\n",
    "deep block nesting": "".join(f"{'  ' * n}a:\n" for n in range(60)) + "  " * 60 + "b\n",
    "very deep nesting": "[" * 400 + "]" * 400 + "\n",
    "bomb": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 10)}]\n" for n in range(8)),
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("text", BUILT_FROM_EVENTS.values(), ids=BUILT_FROM_EVENTS.keys())
def test_the_event_builder_builds_what_the_node_path_builds(text: str, loader: Any) -> None:
    expected = assert_same(text, loader)
    assert shape(built_from_events(text, loader)) == expected[1]


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("text", FOR_THE_NODE_PATH.values(), ids=FOR_THE_NODE_PATH.keys())
def test_what_the_event_builder_cannot_build_exactly_the_node_path_builds_or_reports(
    text: str, loader: Any
) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - any reason is the node path's
        built_from_events(text, loader)
    assert_same(text, loader)


@pytest.mark.parametrize("loader", LOADERS)
def test_merge_keys_follow_yaml_precedence_and_keep_their_lines(loader: Any) -> None:
    document = built_from_events(BUILT_FROM_EVENTS["merge keys"], loader)
    assert list(document["list"].items()) == [("a", 1), ("b", 3), ("c", 4), ("x", 0)]
    assert document["one"] == {"a": 9, "b": 2}
    assert document["twice"] == {"b": 2, "c": 4, "a": 1, "k": "v"}
    assert document["nested"]["again"] == {"a": 0, "b": 2, "d": 5}
    assert document["one"].line == 4
    assert document["one"].key_lines == {"a": 5}  # merged keys have no line of their own here
    assert document["list"].key_lines == {"x": 7}


@pytest.mark.parametrize("loader", LOADERS)
def test_aliases_are_one_shared_object_and_an_alias_key_has_its_anchors_line(loader: Any) -> None:
    document = built_from_events(BUILT_FROM_EVENTS["anchors and aliases"], loader)
    assert document["uses"][1] is document["list"]
    assert document["uses"][2] is document["uses"][3] is document["map"]
    assert document["hello"] == "an alias as a key"
    assert document.key_lines["hello"] == 1


@pytest.mark.parametrize("loader", LOADERS)
def test_scalars_mean_what_pyyaml_says(loader: Any) -> None:
    document = built_from_events(BUILT_FROM_EVENTS["scalars of every type"], loader)
    assert document["ints"] == [0, -1, 3, 31, "0o17", 15, 1000, "12", 90, 5]
    assert document["bools"] == [True, False, True, False, True, "y", "n"]
    assert document["nulls"] == [None, None, None, "", "~"]
    assert document["dates"][0] == datetime.date(2001, 12, 14)
    assert document["explicit"] == ["123", 12, 1.0, True, None, 12, b"hello"]  # `! 12`: PyYAML resolves
    assert math.isnan(document["floats"][4])


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("anchored", "inside", "each"),
    [
        ("x" * 999, 0, 1000),  # a scalar: 1 node + 999 characters; 1,000 aliases reach the bound
        (f"[{'x' * 998}]", 0, 1000),  # a list: 1 + (1 + 998)
        (f"{{k: {'x' * 996}}}", 0, 1000),  # a mapping: its key counts too
        ("[*i]", 999, 1000),  # holds an alias itself, which adds 999 where it is defined
        ("x" * 9900, 0, 9901),  # 101 aliases make 1,000,001: one past the bound
    ],
)
def test_the_alias_expansion_bound_is_the_same_on_both_paths(
    loader: Any, anchored: str, inside: int, each: int
) -> None:
    def document(count: int) -> str:
        return f"i: &i [{'x' * 997}]\na: &a {anchored}\nb: [{', '.join(['*a'] * count)}]\n"

    aliases = (ALIAS_EXPANSION_LIMIT - inside) // each  # the most that fit
    assert len(built_from_events(document(aliases), loader)["b"]) == aliases
    with pytest.raises(cases._NodePathNeeded):
        built_from_events(document(aliases + 1), loader)
    assert assert_same(document(aliases), loader)[0] == "ok"
    assert assert_same(document(aliases + 1), loader)[0] == "raised"


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("copies", [9, 10, 11])
def test_nested_aliases_are_counted_as_the_node_path_counts_them(loader: Any, copies: int) -> None:
    # Each level aliases the previous one `copies` times: near 10 the bound is crossed.
    levels = "".join(f"l{n + 1}: &l{n + 1} [{', '.join([f'*l{n}'] * copies)}]\n" for n in range(5))
    text = f"l0: &l0 {'y' * 8}\n{levels}"
    assert_same(text, loader)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("cases:\n  - id: a\n    prompt: x\n    prompt: y\n", 4, "duplicate key 'prompt'"),
        ("a: 1\nb:\n  c: [unclosed\n", 4, "invalid YAML"),
        ("p: &p {t: 0}\nq:\n  <<: *p\n  s: 1\n  s: 2\n", 5, "duplicate key 's'"),
        ("a: &v {self: *v}\n", 1, "refers to a node that contains it"),
        ("a: 1\n<<: [x]\n", 2, "'<<' merges mappings, but found a scalar"),
    ],
)
def test_errors_keep_their_line(loader: Any, text: str, line: int, message: str) -> None:
    with pytest.raises(CaseFileError) as caught:
        load_yaml_with_lines(text, Path("llm_x.yaml"))
    assert caught.value.line == line
    assert message in str(caught.value)
    assert_same(text, loader)


def test_the_suite_file_is_built_from_events() -> None:
    """The fast path is the path taken: a whole generated suite needs no node path."""
    text = "cases:\n" + "".join(
        f"  - id: case-{n}\n    prompt: 'Invoice {n}'\n    tags: [x]\n"
        f"    assert:\n      - {{type: icontains, value: acme}}\n      - {{type: max-length, value: 2000}}\n"
        for n in range(50)
    )
    document = built_from_events(text, cases._LineLoader)
    assert [case.line for case in document["cases"]] == [2 + 6 * n for n in range(50)]
    assert document["cases"][3].key_lines == {"id": 20, "prompt": 21, "tags": 22, "assert": 23}
    assert len(parse_case_file(text, Path("llm_x.yaml")).cases) == 50


def test_without_libyaml_the_pure_python_parser_serves() -> None:
    script = (
        "import sys; sys.modules['yaml._yaml'] = None\n"
        "import yaml; assert not yaml.__with_libyaml__\n"
        "from pathlib import Path\n"
        "from pytest_llmgate import cases\n"
        "assert cases._LineLoader is cases._PyLineLoader\n"
        "doc = cases.load_yaml_with_lines('a: &a {b: 1}\\nc:\\n  <<: *a\\n  d: 2\\n', Path('x.yaml'))\n"
        "assert doc == {'a': {'b': 1}, 'c': {'b': 1, 'd': 2}} and doc['c'].key_lines == {'d': 4}\n"
        "try:\n    cases.load_yaml_with_lines('a: 1\\na: 2\\n', Path('x.yaml'))\n"
        "except cases.CaseFileError as exc:\n    assert exc.line == 2, exc.line\n"
        "else:\n    raise AssertionError('no error')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


# --- properties --------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "~", "0x1F", "1:30", "<<", "=", "2001-12-14", "1e3", " lead", "a: b"]),
    st.dates(),
)
KEYS = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans(), st.none())
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """YAML as PyYAML writes it, in any style, with shared parts (anchors and aliases) and,
    sometimes, merge keys written around it."""
    shared = draw(VALUES)
    value = draw(st.lists(st.one_of(VALUES, st.just(shared)), max_size=4))
    text = yaml.safe_dump(
        value,
        default_flow_style=draw(st.sampled_from([False, True, None])),
        allow_unicode=draw(st.booleans()),
        width=draw(st.sampled_from([20, 80, 1000])),
        sort_keys=False,
        explicit_start=draw(st.booleans()),
    )
    if draw(st.booleans()):
        base = yaml.safe_dump(draw(st.dictionaries(KEYS, SCALARS, max_size=3)), default_flow_style=True)
        own = yaml.safe_dump(draw(st.dictionaries(KEYS, SCALARS, max_size=3)), default_flow_style=False)
        merged = "\n".join("  " + line for line in own.splitlines() if line != "{}")
        text = f"base: &base {base.strip()}\nvalue: {{}}\nderived:\n  <<: *base\n{merged}\n"
    return text


@pytest.mark.parametrize("loader", LOADERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=documents())
def test_any_document_pyyaml_writes_builds_the_same_from_events(loader: Any, text: str) -> None:
    assert_same(text, loader)


@pytest.mark.parametrize("loader", LOADERS)
@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=" \n\t:-,{}[]&*<>!|'\"#?%~.ab01", max_size=40))
def test_any_text_at_all_gives_the_same_result_or_the_same_error(loader: Any, text: str) -> None:
    assert_same(text, loader)


@pytest.mark.parametrize("loader", LOADERS)
@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from(
            [
                "a: &x 1",
                "b: *x",
                "c: &m {k: 1}",
                "d: {<<: *m, k: 2}",
                "<<: *m",
                "e: [*m, *x]",
                "f: &l [1]",
                "<<: [*m]",
                "g: !!str 1",
                "h: !!int '2'",
                "k: |",
                "  text",
                "- x",
                "  - y",
                "i: &m {j: 2}",
                "*x : key",
                "a: dup",
                "? [z]",
                ": w",
                "---",
                "j: 1e3",
            ]
        ),
        max_size=8,
    )
)
def test_lines_of_anchors_merges_and_tags_in_any_order_agree(loader: Any, lines: list[str]) -> None:
    assert_same("\n".join(lines) + "\n", loader)
