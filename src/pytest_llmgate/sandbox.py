"""Running model-written Python in a separate, locked-down process (what `python-tests` uses).

The parent (`run_python_tests`) writes this very file into a fresh temp folder as the runner and
starts `python -I -S -B runner.py` there; the runner reads the code and the tests from stdin,
installs the guards below, execs the code as module `solution`, runs every top-level `test_*`
function of the tests against it and writes one JSON line per event to `result.jsonl`.

Layers, outermost first (each is bypassable alone; together they stop clumsy or curious code):

1. A fresh temp folder as the working directory, deleted afterwards; an EMPTY environment
   (`env={}`: no OPENAI_API_KEY or any other variable; inside, the runner sets TMPDIR to the
   folder and CPython's locale coercion may add LC_CTYPE) and `-I -S -B` (no PYTHON* variables,
   no site-packages, no user site, no .pyc writes): only the standard library can be imported.
2. A wall-clock timeout (default 10 s); on expiry the whole process group is SIGKILLed.
3. Resource limits set in `preexec_fn`: CPU seconds (timeout + 1), 1 GiB address space, 16 MiB
   per written file, 64 open files, no core files, and RLIMIT_NPROC = 0 (no fork, no threads) -
   which the kernel does not enforce for root.
4. A new network namespace via unshare(2) (`os.unshare` on 3.12+, libc through ctypes before):
   the child sees only a down loopback device, so even raw syscalls reach no network. As root,
   CLONE_NEWNET alone; otherwise CLONE_NEWUSER | CLONE_NEWNET. When the kernel refuses (containers
   without user namespaces, macOS), the audit hook's socket block below is all there is.
5. When the parent is root, the child drops to uid/gid 65534 (nobody), so file permissions stop
   writes as well. If nobody cannot run the interpreter (e.g. pyenv under /root), the run is
   retried as root and layer 6 is what stops writes.
6. An audit hook (PEP 578), installed by the runner before any model code runs; hooks cannot
   be removed. It refuses: writing any file outside the temp folder, reading outside the temp
   folder and the standard library, every socket event (creating, connecting, DNS lookups),
   os.system, subprocess, os.exec*, os.spawn*, os.posix_spawn, os.fork, os.kill, ctypes,
   symlinks, hard links, chmod/chown, sqlite3 files outside the folder, setrlimit, and importing
   `_ctypes`, `_posixsubprocess`, `_gdbm`, `_dbm`, subinterpreters and `_test*` modules.

What it does NOT protect against:

* The verdict. The model's code runs in the same interpreter as the runner, so code written to
  cheat (monkeypatching the runner, reading the tests from memory, forging `result.jsonl`) can
  fake a pass. python-tests checks honest-but-wrong code, not an adversary.
* CPython or kernel bugs: audit hooks are not a security boundary (PEP 578 says so). C extension
  code, if some importable module allows calling arbitrary C, bypasses them. Without a network
  namespace or privilege drop, a hook bypass reaches the network and the user's files.
* Disk use inside the temp folder (each file is capped, their number is not), reading
  world-readable file metadata (`os.stat` is not audited), and CPU use by the kernel on its behalf.
* Windows: there is no sandbox; `run_python_tests` raises SandboxUnavailable there.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

# Only stdlib modules that do not spawn processes are imported at the top: the child runs this file
# too, and a module imported before the audit hook cannot be refused by it any more.

RESULT_FILE = "result.jsonl"
RUNNER_FILE = "runner.py"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
CODE_NAME = "solution.py"
TESTS_NAME = "test_solution.py"
NOBODY = 65534
DEFAULT_TIMEOUT = 10.0
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MAX_RESULT_BYTES = 1 << 20
MAX_EVENTS_BLOCKED = 10


class SandboxUnavailable(RuntimeError):
    """This platform cannot run the sandbox (no POSIX process model)."""


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits of one run. The two switches exist so tests can prove each layer on its own."""

    timeout: float = DEFAULT_TIMEOUT
    memory_bytes: int = 1 << 30
    file_size_bytes: int = 16 << 20
    open_files: int = 64
    network_namespace: bool = True
    drop_privileges: bool = True


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    error: str = ""


@dataclass(frozen=True)
class SandboxRun:
    """What happened in the child, as far as the runner's result file and the exit status tell."""

    test_names: tuple[str, ...]
    outcomes: tuple[Outcome, ...] = ()
    started: bool = False
    finished: bool = False
    setup_error: str | None = None
    timed_out: bool = False
    running: str | None = None
    returncode: int | None = None
    stderr_tail: str = ""
    blocked: tuple[str, ...] = ()
    network_namespace: bool = False
    uid: int | None = None
    launch_error: str | None = None

    @property
    def passed(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.passed)

    @property
    def total(self) -> int:
        return len(self.test_names)


def collect_test_names(tests: str) -> tuple[str, ...]:
    """The top-level `test_*` functions of a test module, in order; ValueError when unusable."""
    try:
        module = ast.parse(tests, TESTS_NAME)
    except SyntaxError as exc:
        raise ValueError(f"the tests do not parse: {exc.msg} (line {exc.lineno})") from exc
    names = []
    for node in module.body:
        if isinstance(node, ast.AsyncFunctionDef) and node.name.startswith("test"):
            raise ValueError(f"{node.name} is async; only plain test functions are run")
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            arguments = node.args
            if arguments.args or arguments.posonlyargs or arguments.kwonlyargs or arguments.vararg:
                raise ValueError(f"{node.name} takes arguments; fixtures are not supported")
            names.append(node.name)
    if not names:
        raise ValueError("the tests define no top-level test_* function")
    return tuple(names)


# --- parent side -------------------------------------------------------------------------------


def run_python_tests(
    code: str, tests: str, policy: SandboxPolicy | None = None, names: Sequence[str] | None = None
) -> SandboxRun:
    """Run `tests` against `code` in a sandboxed child process and report what happened."""
    if os.name != "posix":
        raise SandboxUnavailable("python-tests needs a POSIX system (Linux or macOS) to sandbox the code")
    import shutil
    import tempfile

    policy = policy or SandboxPolicy()
    names = tuple(names) if names is not None else collect_test_names(tests)
    payload = json.dumps({"code": code, "tests": tests, "names": list(names)}).encode()
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="llmgate-sandbox-"))
    try:
        drop = policy.drop_privileges and os.geteuid() == 0
        run = _run_child(workdir, payload, names, policy, drop=drop)
        if drop and not run.started and not run.timed_out:
            # nobody could not start the interpreter (e.g. it lives under /root): run as we are.
            run = _run_child(workdir, payload, names, policy, drop=False)
        return run
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_child(
    workdir: str, payload: bytes, names: tuple[str, ...], policy: SandboxPolicy, *, drop: bool
) -> SandboxRun:
    import subprocess

    for leftover in (RESULT_FILE, STDOUT_FILE, STDERR_FILE):
        if os.path.exists(os.path.join(workdir, leftover)):
            os.remove(os.path.join(workdir, leftover))
    runner = os.path.join(workdir, RUNNER_FILE)
    with open(__file__, encoding="utf-8") as source, open(runner, "w", encoding="utf-8") as target:
        target.write(source.read())
    os.chown(workdir, NOBODY if drop else os.geteuid(), NOBODY if drop else os.getegid())
    argv = [os.path.realpath(sys.executable), "-I", "-S", "-B", "-X", "utf8", runner, workdir, _netns_id()]
    setup = _ChildSetup(policy, drop)
    with (
        open(os.path.join(workdir, STDOUT_FILE), "wb") as stdout,
        open(os.path.join(workdir, STDERR_FILE), "wb") as stderr,
    ):
        try:
            process = subprocess.Popen(
                argv,
                cwd=workdir,
                env={},
                stdin=subprocess.PIPE,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=setup,
                close_fds=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return SandboxRun(names, launch_error=f"{type(exc).__name__}: {exc}")
        timed_out = False
        try:
            process.communicate(payload, timeout=policy.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(process.pid)
            process.wait()
            if process.stdin is not None:
                try:
                    process.stdin.close()
                except OSError:
                    pass
    return _read_run(workdir, names, process.returncode, timed_out)


def _kill_group(pgid: int) -> None:
    import signal

    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _ChildSetup:
    """The preexec_fn: runs in the forked child before exec. Everything it needs is looked up in the
    parent (no imports after fork); every layer is best effort, the runner reports what took."""

    def __init__(self, policy: SandboxPolicy, drop: bool) -> None:
        import math
        import resource
        import signal

        self.drop = drop
        self.unshare = _unshare_function() if policy.network_namespace else None
        self.setrlimit = resource.setrlimit
        cpu = math.ceil(policy.timeout) + 1
        self.limits = [
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_AS, (policy.memory_bytes, policy.memory_bytes)),
            (resource.RLIMIT_FSIZE, (policy.file_size_bytes, policy.file_size_bytes)),
            (resource.RLIMIT_NOFILE, (policy.open_files, policy.open_files)),
            (resource.RLIMIT_CORE, (0, 0)),
        ]
        # Set after the uid change: setuid under RLIMIT_NPROC = 0 would make exec fail.
        nproc = getattr(resource, "RLIMIT_NPROC", None)
        self.nproc = [] if nproc is None else [(nproc, (0, 0))]
        self.signal, self.sigxfsz, self.ignore = (
            signal.signal,
            getattr(signal, "SIGXFSZ", None),
            signal.SIG_IGN,
        )
        self.root = os.geteuid() == 0

    def __call__(self) -> None:
        isolated = False
        if self.unshare is not None and self.root:
            isolated = self.unshare(CLONE_NEWNET)
        if self.drop:
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            except OSError:
                pass
        if self.unshare is not None and not isolated:
            self.unshare(CLONE_NEWUSER | CLONE_NEWNET)
        for limit, values in self.limits + self.nproc:
            try:
                self.setrlimit(limit, values)
            except (OSError, ValueError):
                pass
        if self.sigxfsz is not None:
            # A write past the file size limit then fails with an OSError the runner can report.
            self.signal(self.sigxfsz, self.ignore)


def _unshare_function() -> Callable[[int], bool] | None:
    """unshare(2) as `flags -> succeeded`, or None where the platform has none."""
    native = getattr(os, "unshare", None)
    if native is not None:

        def call_native(flags: int) -> bool:
            try:
                native(flags)
            except OSError:
                return False
            return True

        return call_native
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        unshare = ctypes.CDLL(None, use_errno=True).unshare
    except (OSError, AttributeError):
        return None
    unshare.argtypes = [ctypes.c_int]
    unshare.restype = ctypes.c_int

    def call_libc(flags: int) -> bool:
        return bool(unshare(flags) == 0)

    return call_libc


def _netns_id() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


def _read_run(workdir: str, names: tuple[str, ...], returncode: int, timed_out: bool) -> SandboxRun:
    events: list[dict[str, Any]] = []
    try:
        with open(os.path.join(workdir, RESULT_FILE), encoding="utf-8", errors="replace") as results:
            lines = results.read(MAX_RESULT_BYTES).splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    started = next((event for event in events if event.get("event") == "started"), None)
    outcomes: dict[str, Outcome] = {}
    running = None
    setup_error = None
    blocked: list[str] = []
    for event in events:
        kind, name = event.get("event"), event.get("test")
        if kind == "running" and name in names:
            running = str(name)
        elif kind in ("passed", "failed") and name in names and name not in outcomes:
            outcomes[str(name)] = Outcome(str(name), kind == "passed", str(event.get("error", "")))
            running = None
        elif kind == "setup_error" and setup_error is None:
            setup_error = str(event.get("error", ""))
        elif kind == "blocked" and len(blocked) < MAX_EVENTS_BLOCKED:
            blocked.append(str(event.get("what", "")))
    try:
        with open(os.path.join(workdir, STDERR_FILE), "rb") as stderr:
            stderr.seek(0, os.SEEK_END)
            stderr.seek(max(0, stderr.tell() - 2000))
            stderr_tail = stderr.read().decode("utf-8", "replace")
    except OSError:
        stderr_tail = ""
    return SandboxRun(
        test_names=names,
        outcomes=tuple(outcomes[name] for name in names if name in outcomes),
        started=started is not None,
        finished=any(event.get("event") == "done" for event in events),
        setup_error=setup_error,
        timed_out=timed_out,
        running=running,
        returncode=returncode,
        stderr_tail=stderr_tail,
        blocked=tuple(blocked),
        network_namespace=bool(started and started.get("netns")),
        uid=started.get("uid") if started else None,
    )


# --- child side: the runner --------------------------------------------------------------------


class SandboxViolation(PermissionError):
    """Raised by the audit hook in the child; a PermissionError so stdlib fallbacks (tempfile's probing
    of /tmp, for one) treat it like any refused access."""


_BLOCKED_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.spawn",
        "os.posix_spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "signal.pthread_kill",
        "subprocess.Popen",
        "pty.spawn",
        "os.symlink",
        "os.link",
        "os.chmod",
        "os.chown",
        "os.chflags",
        "os.lchflags",
        "os.setxattr",
        "os.removexattr",
        "os.mkfifo",
        "os.mknod",
        "os.chroot",
        "os.startfile",
        "resource.setrlimit",
        "resource.prlimit",
        "sqlite3.enable_load_extension",
        "sqlite3.load_extension",
        "sys.remote_exec",
        "webbrowser.open",
    }
)
_BLOCKED_PREFIXES = (
    "socket.",
    "ctypes.",
    "urllib.",
    "http.client.",
    "ftplib.",
    "smtplib.",
    "poplib.",
    "imaplib.",
    "nntplib.",
    "telnetlib.",
    "_posixsubprocess.",
    "cpython._xxsubinterpreters",
)
_BLOCKED_IMPORTS = frozenset(
    {
        "ctypes",
        "_ctypes",
        "_posixsubprocess",
        "_gdbm",
        "_dbm",
        "_xxsubinterpreters",
        "_xxinterpchannels",
        "_interpreters",
        "_interpchannels",
        "_interpqueues",
    }
)
# Events that write: (positions of their path arguments, positions of the matching dir_fd arguments;
# -1 or None is "relative to the working directory").
_WRITE_EVENTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "os.remove": ((0,), (1,)),
    "os.rmdir": ((0,), (1,)),
    "os.mkdir": ((0,), (2,)),
    "os.rename": ((0, 1), (2, 3)),
    "os.truncate": ((0,), ()),
    "os.utime": ((0,), (3,)),
    "shutil.rmtree": ((0,), (1,)),
}
# Events that read a directory or metadata at their first argument (glob ends in os.scandir).
_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "os.getxattr", "os.listxattr"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_ALWAYS_OPEN = ("/dev/null",)


def make_audit_hook(
    workdir: str, readable: Sequence[str], report: Callable[[str], None]
) -> Callable[[str, tuple[Any, ...]], None]:
    """The child's audit hook: refuse writes outside `workdir`, reads outside `readable`, and the
    events above. `report` is told each refusal (the runner writes it to the result file)."""
    write_roots = (workdir,)
    read_roots = (workdir, *readable)

    def under(path: str, roots: Sequence[str]) -> bool:
        return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)

    def refuse(what: str) -> None:
        report(what)
        raise SandboxViolation(f"sandbox: {what} is not allowed")

    def check_path(event: str, raw: Any, roots: Sequence[str], dir_fd: Any = None) -> None:
        if raw is None or isinstance(raw, int):
            return  # an already open descriptor (or "no path"): nothing new is reached
        path = os.fsdecode(raw)
        if dir_fd not in (None, -1) and not os.path.isabs(path):
            try:  # where the descriptor points, on Linux
                path = os.path.join(os.readlink(f"/proc/self/fd/{int(dir_fd)}"), path)
            except (OSError, ValueError, TypeError):
                refuse(f"{event} relative to a directory descriptor")
        path = os.path.realpath(path)
        if path in _ALWAYS_OPEN or under(path, roots):
            return
        refuse(f"{event} {os.fsdecode(raw)!r}")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = (*args, None, None, None)[:3]
            writing = bool((flags or 0) & _WRITE_FLAGS) or any(c in (mode or "") for c in "wax+")
            if (
                writing
                and mode is None
                and not isinstance(path, int)
                and not os.path.isabs(os.fsdecode(path))
            ):
                # os.open's audit event does not say which dir_fd a relative path is relative to.
                refuse(f"os.open for writing of relative path {os.fsdecode(path)!r}")
            check_path("writing" if writing else "reading", path, write_roots if writing else read_roots)
        elif event in _BLOCKED_EVENTS or event.startswith(_BLOCKED_PREFIXES):
            refuse(event)
        elif event == "import":
            name = str(args[0]) if args else ""
            if name in _BLOCKED_IMPORTS or name.startswith("_test"):
                refuse(f"import {name}")
        elif event in _WRITE_EVENTS:
            paths, dir_fds = _WRITE_EVENTS[event]
            for position, dir_position in zip_longest(paths, dir_fds):
                raw = args[position] if position < len(args) else None
                dir_fd = args[dir_position] if dir_position is not None and dir_position < len(args) else None
                check_path(event, raw, write_roots, dir_fd)
        elif event in _READ_EVENTS:
            check_path(event, args[0] if args else None, read_roots)
        elif event == "sqlite3.connect":
            database = os.fsdecode(args[0]) if args and isinstance(args[0], (str, bytes)) else ""
            if database.startswith("file:"):
                refuse(f"{event} with a URI")
            if database not in (":memory:", ""):
                check_path(event, database, write_roots)

    return hook


def _pytest_shim() -> Any:
    """A stand-in `pytest` module for tests written pytest-style: raises, approx and fail."""
    import math
    import re
    import types

    module = types.ModuleType("pytest")

    class RaisesContext:
        def __init__(self, expected: Any, match: str | None = None) -> None:
            self.expected, self.match, self.value = expected, match, None

        def __enter__(self) -> RaisesContext:
            return self

        def __exit__(self, kind: Any, value: Any, traceback: Any) -> bool:
            if kind is None:
                raise AssertionError(f"DID NOT RAISE {self.expected}")
            if not issubclass(kind, self.expected):
                return False
            if self.match is not None and not re.search(self.match, str(value)):
                raise AssertionError(f"{str(value)!r} does not match {self.match!r}")
            self.value = value
            return True

    class Approx:
        def __init__(self, expected: Any, rel: float = 1e-6, abs: float = 1e-12) -> None:
            self.expected, self.rel, self.abs = expected, rel, abs

        def _close(self, actual: Any, expected: Any) -> bool:
            if isinstance(expected, (list, tuple)):
                return (
                    isinstance(actual, (list, tuple))
                    and len(actual) == len(expected)
                    and all(self._close(a, e) for a, e in zip(actual, expected, strict=True))
                )
            try:
                return math.isclose(actual, expected, rel_tol=self.rel, abs_tol=self.abs)
            except TypeError:
                return bool(actual == expected)

        def __eq__(self, actual: object) -> bool:
            return self._close(actual, self.expected)

        def __repr__(self) -> str:
            return f"approx({self.expected!r})"

    def fail(reason: str = "") -> None:
        raise AssertionError(reason)

    for name, value in (("raises", RaisesContext), ("approx", Approx), ("fail", fail)):
        setattr(module, name, value)
    return module


def describe_exception(exc: BaseException) -> str:
    """`Kind: message (file:line)`, one line; a bare `assert` shows its source line instead."""
    import traceback

    message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    last = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in (CODE_NAME, TESTS_NAME):
            last = frame
    if isinstance(exc, AssertionError) and not message and last is not None and last.line:
        message = f"`{last.line.strip()}`"
    where = f" ({last.filename}:{last.lineno})" if last is not None else ""
    return f"{type(exc).__name__}{': ' + message if message else ''}{where}"


def _prime_linecache(filename: str, source: str) -> None:
    """Let tracebacks show lines of code that exists only in memory (mtime None: never re-checked)."""
    import linecache

    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)


def runner_main(argv: Sequence[str]) -> int:
    """The child: read the payload, guard the process, run the code, then every test."""
    import types

    workdir, parent_netns = argv[1], argv[2]
    payload = json.loads(sys.stdin.buffer.read() or b"{}")
    results = open(os.path.join(workdir, RESULT_FILE), "w", encoding="utf-8")

    def emit(**event: Any) -> None:
        results.write(json.dumps(event) + "\n")
        results.flush()

    own_netns = _netns_id()
    emit(
        event="started", netns=bool(parent_netns and own_netns and own_netns != parent_netns), uid=os.getuid()
    )
    code, tests, names = str(payload["code"]), str(payload["tests"]), list(payload["names"])
    _prime_linecache(CODE_NAME, code)
    _prime_linecache(TESTS_NAME, tests)
    readable = [os.path.realpath(entry) for entry in sys.path if entry]
    os.environ["TMPDIR"] = workdir  # the one variable the code sees: tempfile then stays inside
    sys.modules["pytest"] = _pytest_shim()
    reported: list[str] = []

    def report(what: str) -> None:
        if len(reported) < MAX_EVENTS_BLOCKED:
            reported.append(what)
            emit(event="blocked", what=what)

    sys.addaudithook(make_audit_hook(workdir, readable, report))

    solution = types.ModuleType("solution")
    solution.__file__ = os.path.join(workdir, CODE_NAME)
    sys.modules["solution"] = solution
    try:
        exec(compile(code, CODE_NAME, "exec"), solution.__dict__)
    except BaseException as exc:
        emit(event="setup_error", error=f"the code raised {describe_exception(exc)} before any test ran")
        return _finish(results, emit)
    namespace = dict(solution.__dict__)
    namespace["__name__"] = "test_solution"
    try:
        exec(compile(tests, TESTS_NAME, "exec"), namespace)
    except BaseException as exc:
        emit(event="setup_error", error=f"the tests raised {describe_exception(exc)} at import")
        return _finish(results, emit)
    for name in names:
        emit(event="running", test=name)
        try:
            namespace[name]()
        except BaseException as exc:
            emit(event="failed", test=name, error=describe_exception(exc))
        else:
            emit(event="passed", test=name)
    return _finish(results, emit)


def _finish(results: Any, emit: Callable[..., None]) -> int:
    emit(event="done")
    results.close()
    sys.stdout.flush()
    # Skip atexit handlers and finalizers the model's code may have registered.
    os._exit(0)


if __name__ == "__main__":
    runner_main(sys.argv)
