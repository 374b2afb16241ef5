"""Template rendering: Jinja2 semantics, JSON for data, strict names, vars that use vars."""

from __future__ import annotations

import pytest

from pytest_llmgate.templates import TemplateProblem, is_template, render, render_data, resolve_vars


def test_plain_text_is_returned_as_is() -> None:
    text = "Use a {single} brace and } or { freely"
    assert not is_template(text)
    assert render(text, {}) is text


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("{{ item | upper }}", {"item": "pen"}, "PEN"),
        ("{{ style.tone }}", {"style": {"tone": "formal"}}, "formal"),
        ("{% for x in xs %}{{ x }};{% endfor %}", {"xs": [1, 2]}, "1;2;"),
        ("{{ cfg }}", {"cfg": {"tone": "formal"}}, '{"tone": "formal"}'),
        ("{{ xs }}", {"xs": ["a", "é"]}, '["a", "é"]'),
        ("{{ on }} {{ off }} {{ nothing }}", {"on": True, "off": False, "nothing": None}, "true false null"),
        ("{{ n }}", {"n": 3}, "3"),
        ("{{ cfg | dump }}", {"cfg": {"a": [1]}}, '{"a": [1]}'),
        ("{{ cfg | tojson }}", {"cfg": {"html": "<b>&'"}}, '{"html": "<b>&\'"}'),
        ("{% raw %}{{ literal }}{% endraw %}", {}, "{{ literal }}"),
        ("ends with a newline\n{{ x }}\n", {"x": "y"}, "ends with a newline\ny\n"),
    ],
)
def test_render(template: str, variables: dict[str, object], expected: str) -> None:
    assert render(template, variables) == expected


def test_undefined_name_lists_the_defined_ones() -> None:
    with pytest.raises(TemplateProblem) as info:
        render("line one\n{{ missing }}", {"b": 1, "a": 2})
    assert info.value.message.startswith("'missing' is undefined (vars defined: a, b);")
    assert info.value.line == 2


def test_undefined_attribute_is_an_error_too() -> None:
    with pytest.raises(TemplateProblem, match="has no attribute 'colour'"):
        render("{{ style.colour }}", {"style": {"tone": "formal"}})


def test_syntax_error_has_its_line() -> None:
    with pytest.raises(TemplateProblem) as info:
        render("ok\n{% for x in %}", {})
    assert info.value.message.startswith("template syntax error:")
    assert info.value.line == 2


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(TemplateProblem, match=r"sandbox|unsafe|not allowed"):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_render_data_renders_every_string_and_keeps_other_values() -> None:
    value = {"enum": ["{{ city }}", "x"], "min": 1, "{{ key }}": True}
    assert render_data(value, {"city": "Paris"}) == {"enum": ["Paris", "x"], "min": 1, "{{ key }}": True}


def test_vars_using_vars_resolve_in_dependency_order() -> None:
    resolved = resolve_vars({"greeting": "{{ salutation }} {{ name }}", "salutation": "Dear {{ title }}",
                             "title": "Dr", "name": "Ada"})  # fmt: skip
    assert resolved["greeting"] == "Dear Dr Ada"


def test_vars_not_marked_as_templates_stay_literal() -> None:
    resolved = resolve_vars({"code": "{{ x }}", "x": "1"}, templated=set())
    assert resolved["code"] == "{{ x }}"


def test_a_var_naming_only_itself_keeps_its_braces() -> None:
    assert resolve_vars({"name": "{{name}}"}) == {"name": "{{name}}"}
    assert render("Fill {{name}}", resolve_vars({"name": "{{name}}"})) == "Fill {{name}}"


def test_vars_in_a_cycle_are_an_error() -> None:
    with pytest.raises(TemplateProblem, match="vars a, b use each other in a cycle"):
        resolve_vars({"a": "{{ b }}", "b": "{{ a }}"})


def test_jinja2_is_not_imported_for_plain_text() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pytest_llmgate.templates import render; render('plain', {}); "
        "print('jinja2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("text", "template"),
    [
        ("{{ x }}", True),
        ("a {% if x %}b{% endif %}", True),
        ("{# note #}", True),
        ("{ {x} }", False),
        ("{", False),
        ("no braces", False),
        ("", False),
        ("}} {{", True),
        ("{\n{", False),
    ],
)
def test_what_counts_as_template_syntax(text: str, template: bool) -> None:
    assert is_template(text) is template
