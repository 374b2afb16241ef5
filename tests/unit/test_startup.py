"""What every pytest run pays for the plugin before any case file is collected (issue 17): the
entry module imports only the options and the shared names, and the constants it repeats to
stay that cheap are the ones their own modules define."""

from __future__ import annotations

import subprocess
import sys

from pytest_llmgate import config, keys, options
from pytest_llmgate.model import params

# Imported by the entry module and nothing else of the package (pytest runs without case files).
ENTRY_MODULES = {"pytest_llmgate", "pytest_llmgate.plugin", "pytest_llmgate.keys", "pytest_llmgate.options"}
# Third-party modules only a case file, a live run or a report needs.
HEAVY = {"yaml", "jinja2", "openai", "vcr", "tiktoken", "jsonschema", "httpx2", "tabulate"}


def imported_by(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    listing = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_importing_the_entry_module_imports_nothing_heavy() -> None:
    modules = imported_by("import pytest_llmgate.plugin")
    assert {name for name in modules if name.startswith("pytest_llmgate")} == ENTRY_MODULES
    assert modules & HEAVY == set()


def test_constants_repeated_by_the_entry_modules_match_their_owners() -> None:
    assert options.GATE_SCOPES == config.GATE_SCOPES
    assert options.PARAM_POLICIES == params.POLICIES
    assert keys.PROJECT_FILE == config.PROJECT_FILE
