"""The python-tests sandbox: hostile generated code fails the assertion and leaves this run untouched.

Each test starts one child process; the network and file tests also run with the network namespace
and the privilege drop switched off, to prove the audit hook holds on its own.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmgate.sandbox import SandboxPolicy, make_audit_hook, run_python_tests

from .helpers import run

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox needs POSIX")

FAKE_KEY = "-".join(("sk", "proj", "FAKEKEYsandbox0123456789abcdef"))  # not flagged by scanners
TRIVIAL_TEST = "def test_add():\n    assert add(2, 3) == 5\n"
HOOK_ONLY = SandboxPolicy(network_namespace=False, drop_privileges=False)


@pytest.fixture(autouse=True)
def no_leftover_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every run removes its temp folder, whatever the code did.

    Sandbox folders go to a private parent (world-traversable, like /tmp, so the `nobody` child can
    still enter its own folder), which keeps parallel workers from seeing each other's folders.
    """
    parent = tempfile.mkdtemp(prefix="llmgate-test-")
    os.chmod(parent, 0o755)
    monkeypatch.setattr(tempfile, "tempdir", parent)
    try:
        yield
        assert os.listdir(parent) == []
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback server the generated code will try to reach; nothing may arrive."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    yield server
    server.close()


def _assert_nothing_arrived(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        server.accept()


def test_the_code_cannot_see_the_parents_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    code = "import os\ndef add(a, b):\n    return a + b\nKEY = os.environ.get('OPENAI_API_KEY', '')\n"
    tests = (
        "import os\n"
        "def test_sees_key():\n"
        "    assert KEY.startswith('sk-'), 'no key: ' + repr(dict(os.environ))\n"
    )
    result = run({"type": "python-tests", "value": tests}, code)
    assert not result.passed
    assert "no key" in result.reason
    assert FAKE_KEY not in result.reason
    assert os.environ["OPENAI_API_KEY"] == FAKE_KEY


@pytest.mark.parametrize("policy", [None, HOOK_ONLY], ids=["all-layers", "audit-hook-only"])
def test_the_code_cannot_write_outside_its_folder(tmp_path: Path, policy: SandboxPolicy | None) -> None:
    target = tmp_path / "pwned.txt"
    code = f"def add(a, b):\n    open({str(target)!r}, 'w').write('pwned')\n    return a + b\n"
    outcome = run_python_tests(code, TRIVIAL_TEST, policy)
    assert outcome.passed == 0
    assert "writing" in outcome.outcomes[0].error
    assert not target.exists()
    result = run({"type": "python-tests", "value": TRIVIAL_TEST}, code)
    assert not result.passed
    assert f"blocked: writing {str(target)!r}" in result.reason
    assert not target.exists()


def test_the_code_cannot_delete_or_read_files_outside_its_folder(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-42")
    code = (
        "import os\n"
        f"def add(a, b):\n    raise ValueError(open({str(secret)!r}).read())\n"
        f"def remove():\n    os.remove({str(secret)!r})\n"
    )
    tests = TRIVIAL_TEST + "def test_remove():\n    remove()\n"
    outcome = run_python_tests(code, tests, HOOK_ONLY)
    assert outcome.passed == 0
    assert all("SandboxViolation" in item.error for item in outcome.outcomes)
    assert "TOPSECRET" not in repr(outcome)
    assert secret.read_text() == "TOPSECRET-42"


@pytest.mark.parametrize("policy", [None, HOOK_ONLY], ids=["all-layers", "audit-hook-only"])
def test_the_code_cannot_open_a_socket(listener: socket.socket, policy: SandboxPolicy | None) -> None:
    port = listener.getsockname()[1]
    code = (
        "import socket\n"
        "def add(a, b):\n"
        f"    with socket.create_connection(('127.0.0.1', {port}), timeout=2) as s:\n"
        "        s.sendall(b'leak')\n"
        "    return a + b\n"
    )
    outcome = run_python_tests(code, TRIVIAL_TEST, policy)
    assert outcome.passed == 0
    assert "SandboxViolation: sandbox: socket." in outcome.outcomes[0].error
    _assert_nothing_arrived(listener)


def test_the_child_runs_in_its_own_network_namespace_where_the_kernel_allows() -> None:
    outcome = run_python_tests("def add(a, b):\n    return a + b\n", TRIVIAL_TEST)
    assert outcome.passed == 1
    if not sys.platform.startswith("linux") or not os.path.exists("/proc/self/ns/net"):
        pytest.skip("no network namespaces on this platform")
    if not outcome.network_namespace:
        pytest.skip("this kernel or container refuses unshare(CLONE_NEWNET); the audit hook is the block")
    assert outcome.network_namespace


def test_an_endless_loop_is_killed_at_the_timeout() -> None:
    code = "def add(a, b):\n    while True:\n        pass\n"
    started = time.monotonic()
    result = run({"type": "python-tests", "value": TRIVIAL_TEST, "timeout": 1}, code)
    elapsed = time.monotonic() - started
    assert not result.passed
    assert result.reason == "python-tests: 0/1 passed; timed out after 1 s in test_add, killed"
    assert elapsed < 1 + 3


@pytest.mark.parametrize(
    ("snippet", "blocked"),
    [
        ("import subprocess\nsubprocess.run(['true'])", "import _posixsubprocess"),
        ("import os\nos.system('true')", "os.system"),
        ("import os\nos.fork()", "os.fork"),
        ("import os\nos.kill(os.getppid(), 0)", "os.kill"),  # signal 0: harmless should the hook fail
        ("import ctypes", "import ctypes"),
        ("import _ctypes", "import _ctypes"),
    ],
)
def test_processes_signals_and_ctypes_are_refused(snippet: str, blocked: str) -> None:
    code = f"def add(a, b):\n    return a + b\n{snippet}\n"
    result = run({"type": "python-tests", "value": TRIVIAL_TEST}, code)
    assert not result.passed
    assert f"blocked: {blocked}" in result.reason


def test_ordinary_stdlib_use_inside_the_folder_works() -> None:
    code = (
        "import json, os, re, shutil, tempfile, collections\n"
        "def add(a, b):\n"
        "    os.makedirs('work/sub')\n"
        "    with open('work/sub/n.json', 'w') as f:\n"
        "        json.dump({'n': a + b}, f)\n"
        "    with tempfile.NamedTemporaryFile('w') as scratch:\n"
        "        scratch.write('x')\n"
        "    with open('work/sub/n.json') as f:\n"
        "        total = json.load(f)['n']\n"
        "    shutil.rmtree('work')\n"
        "    return total\n"
    )
    outcome = run_python_tests(code, TRIVIAL_TEST)
    assert outcome.passed == 1, outcome


def test_the_audit_hook_allows_the_folder_and_refuses_elsewhere(tmp_path: Path) -> None:
    seen: list[str] = []
    hook = make_audit_hook(str(tmp_path), ["/usr/lib/python3"], seen.append)
    hook("open", (str(tmp_path / "a.txt"), "w", os.O_WRONLY | os.O_CREAT))
    hook("open", ("/usr/lib/python3/os.py", "r", os.O_RDONLY))
    hook("os.remove", (str(tmp_path / "a.txt"), -1))
    with pytest.raises(PermissionError, match=re.escape("writing '/usr/lib/python3/os.py'")):
        hook("open", ("/usr/lib/python3/os.py", "w", os.O_WRONLY))
    with pytest.raises(PermissionError, match=re.escape("reading '/etc/passwd'")):
        hook("open", ("/etc/passwd", "r", os.O_RDONLY))
    with pytest.raises(PermissionError, match=re.escape("socket.connect")):
        hook("socket.connect", (None, ("127.0.0.1", 80)))
    with pytest.raises(PermissionError, match=re.escape("sqlite3.connect")):
        hook("sqlite3.connect", ("/etc/x.db",))
    assert seen == [
        "writing '/usr/lib/python3/os.py'",
        "reading '/etc/passwd'",
        "socket.connect",
        "sqlite3.connect '/etc/x.db'",
    ]
