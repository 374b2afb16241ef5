"""The python-tests sandbox: hostile generated code fails the assertion and leaves this run untouched.

Each test starts one child process; the network and file tests also run with the network namespace
and the privilege drop switched off, to prove the audit hook holds on its own.
"""

from __future__ import annotations

import json
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

from pytest_llmgate.sandbox import SandboxPolicy, child, make_audit_hook, run_python_tests

from .helpers import run

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox needs POSIX")

FAKE_KEY = "-".join(("sk", "proj", "FAKEKEYsandbox0123456789abcdef"))  # not flagged by scanners
TRIVIAL_TEST = "def test_add():\n    assert add(2, 3) == 5\n"
HOOK_ONLY = SandboxPolicy(network_namespace=False, drop_privileges=False)


@pytest.fixture(autouse=True)
def no_leftover_folders(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Every run removes its temp folder, whatever the code did.

    Sandbox folders go to a private parent (world-traversable, like /tmp, so the `nobody` child can
    still enter its own folder), which keeps parallel workers from seeing each other's folders.
    pytest's own base temp folder is settled first, else it would land in that private parent.
    """
    tmp_path_factory.getbasetemp()
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


# --- two processes: honest code keeps working, values cross as plain data only -----------------

HONEST_CODE = """
import math
from collections import Counter
class AppError(Exception):
    pass
class NotFound(AppError, KeyError):
    def __init__(self, key):
        super().__init__(key)
        self.key = key
class Stack:
    def __init__(self):
        self.items = []
    def push(self, item):
        self.items.append(item)
    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()
    def __len__(self):
        return len(self.items)
class Node:
    def __init__(self, val, next=None):
        self.val, self.next = val, next
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        yield a
        a, b = b, a + b
def find(mapping, key):
    if key not in mapping:
        raise NotFound(key)
    return mapping[key]
def sort_in_place(items):
    items.sort()
def apply(function, value):
    return function(value)
def count(text):
    return Counter(text.split())
def area(radius):
    return math.pi * radius * radius
def reverse(head):
    previous = None
    while head:
        head.next, previous, head = previous, head, head.next
    return previous
"""
HONEST_TESTS = """
import pytest
import solution
from solution import Stack, NotFound
def test_class():
    stack = Stack()
    stack.push(1)
    stack.push(2)
    assert len(stack) == 2 and stack.pop() == 2 and stack.items == [1]
    assert isinstance(stack, Stack) and stack == stack
    with pytest.raises(IndexError, match="empty"):
        Stack().pop()
def test_generator():
    assert list(fib(5)) == [0, 1, 1, 2, 3]
def test_solution_exceptions_keep_their_hierarchy_and_attributes():
    with pytest.raises(NotFound) as info:
        find({}, "a")
    assert info.value.key == "a"
    for expected in (solution.AppError, KeyError):
        with pytest.raises(expected):
            find({}, "b")
def test_in_place_arguments_are_written_back():
    items = [3, 1, 2]
    sort_in_place(items)
    assert items == [1, 2, 3]
def test_functions_passed_in_run_here():
    assert apply(lambda value: value * 2, 21) == 42
def test_stdlib_containers_cross_as_themselves():
    assert count("a b a") == {"a": 2, "b": 1}
    assert area(1) == pytest.approx(3.14159, rel=1e-3)
def test_linked_objects():
    node = reverse(Node(1, Node(2, Node(3))))
    values = []
    while node:
        values.append(node.val)
        node = node.next
    assert values == [3, 2, 1]
"""


def test_honest_code_passes_classes_generators_exceptions_callbacks_and_imports() -> None:
    outcome = run_python_tests(HONEST_CODE, HONEST_TESTS)
    assert [item.error for item in outcome.outcomes if not item.passed] == []
    assert outcome.passed == outcome.total == 7


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the drop needs root")
def test_as_root_the_code_runs_as_nobody_even_with_the_interpreter_under_a_closed_folder() -> None:
    code = "import os, json, fractions\ndef add(a, b):\n    return a + b\nUID = os.getuid()\n"
    tests = "def test_add():\n    assert add(2, 3) == 5\ndef test_uid():\n    assert UID == 65534\n"
    outcome = run_python_tests(code, tests)
    assert outcome.passed == 2, outcome
    assert outcome.uid == 65534
    assert outcome.weaker == () or not outcome.network_namespace


def test_a_truth_test_asks_the_code_but_a_comparison_is_refused() -> None:
    code = "class Yes:\n    def __bool__(self):\n        return True\ndef is_valid(x):\n    return Yes()\n"
    tests = (
        "def test_valid():\n    assert is_valid(1)\n"
        "def test_invalid():\n    assert not is_valid(-1)\n"
        "def test_equal():\n    assert is_valid(1) == True\n"
        "def test_swallowed():\n"
        "    try:\n        assert is_valid(1) == True\n    except BaseException:\n        pass\n"
    )
    outcome = run_python_tests(code, tests)
    verdicts = {item.name: (item.passed, item.kind) for item in outcome.outcomes}
    assert verdicts == {
        "test_valid": (True, ""),  # no operand reaches the code: a rigged __bool__ = returning True
        "test_invalid": (False, ""),
        "test_equal": (False, "untrusted"),
        "test_swallowed": (False, "untrusted"),  # catching the refusal does not help
    }


@pytest.mark.parametrize(
    "node",
    [
        ["i", "12", "extra"],
        ["x", 1],
        ["l", [["i", "zz"]]],
        ["d", [[["l", []], ["N"]]]],  # an unhashable key
        {"i": "1"},
        ["D", "os.system", []],
        ["h", 1, None, "solution.Y", "extra"],
    ],
)
def test_the_wire_decoder_rejects_anything_an_encoder_would_not_write(node: object) -> None:
    codec = child.Codec(lambda value: ["h", 0], _no_refs)
    with pytest.raises(child.WireError):
        codec.decode(node)


def _no_refs(node: list[object]) -> object:
    raise child.WireError("no references here")


def test_the_wire_format_keeps_exact_plain_types_and_refers_to_everything_else() -> None:
    class Rigged(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    refs: list[object] = []
    codec = child.Codec(
        lambda value: refs.append(value) or ["h", len(refs)], lambda node: ("handle", node[1])
    )
    value = {
        "n": [1, -(2**200), 2.5, float("inf"), (None, True)],
        "s": {b"x", frozenset({3})},
        4: range(1, 9, 2),
    }
    assert codec.decode(json.loads(json.dumps(codec.encode(value)))) == value
    assert codec.decode(codec.encode([Rigged(5)])) == [("handle", 1)]
    assert [type(ref) for ref in refs] == [Rigged]
