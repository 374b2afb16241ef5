"""Running model-written Python against the user's tests, in two locked-down processes (python-tests).

The verdict must not be fakeable by the code it judges, so the code and the tests never share an
interpreter (see `child.py`, which both processes run):

* the **solution process** execs the model's code as module `solution` and answers requests about
  it (call this, get that attribute, iterate that) over a pair of pipes. It never receives the tests:
  reading frames or memory finds none, and patching json, builtins or the runner changes only itself;
* the **tests process** runs the user's tests against proxies of the code's names and reports each
  test to this process on a pipe of its own, which the code never holds. Values cross from the code
  as plain data checked by exact type (an int subclass with a rigged `__eq__` is not plain); any
  other object stays behind a handle that refuses `==`, `<` and `in`, and a test that compares one
  fails as an attempt to cheat. When the code exits, crashes or sends a malformed message, the
  running test and every later one fail: "the code ended its process ...: it broke the runner".

Layers around both processes, outermost first (each bypassable alone; together they stop clumsy or
curious code):

1. A fresh temp folder each as working directory (the code's is not the tests'), deleted afterwards;
   an EMPTY environment (`env={}`: no OPENAI_API_KEY or any other variable; inside, the runner sets
   TMPDIR to the folder and CPython's locale coercion may add LC_CTYPE) and `-I -S -B`: only the
   standard library can be imported. The payloads arrive on stdin from unlinked temp files.
2. A wall-clock timeout (default 10 s) for the whole run; then both process groups are SIGKILLed.
3. Resource limits set in `preexec_fn`: CPU seconds (timeout + 1), 1 GiB address space, 16 MiB
   per written file, 64 open files, no core files, and RLIMIT_NPROC = 0 for the code (no fork, no
   threads) - which the kernel does not enforce for root.
4. A new network namespace via unshare(2) (`os.unshare` on 3.12+, libc through ctypes before):
   the children see only a down loopback device. As root, CLONE_NEWNET alone; otherwise
   CLONE_NEWUSER | CLONE_NEWNET. Where the kernel refuses (containers without user namespaces,
   macOS), the audit hook's socket block is all there is.
5. When pytest runs as root, the solution process starts as root (so it can read an interpreter
   under /root, mode 700), reads its payload, and drops to uid/gid 65534 (nobody, no supplementary
   groups) before any model code runs; stdlib folders nobody cannot reach any more stay importable
   through directory descriptors opened before the drop (/proc/self/fd/N). The tests process stays
   root, so the code cannot signal, ptrace or read it. Not root: both run as the invoking user, the
   tests process is made non-dumpable (no ptrace, no /proc/<pid>/fd from the code) and the audit
   hook is what stops the code's writes and signals.
6. An audit hook (PEP 578) in both, installed before any code runs; hooks cannot be removed. It
   refuses: writing any file outside the folder, reading outside the folder and the standard
   library, every socket event, os.system, subprocess, os.exec*, os.spawn*, os.posix_spawn,
   os.fork, os.kill, ctypes, symlinks, hard links, chmod/chown, sqlite3 files outside the folder,
   setrlimit, and importing `_ctypes`, `_posixsubprocess`, `_gdbm`, `_dbm`, subinterpreters and
   `_test*` modules. In the solution process it also notes stack and gc introspection by the code,
   and the runner notes replaced builtins and runner modules: shown as attempts to cheat.

What it does NOT protect against:

* CPython or kernel bugs: audit hooks are not a security boundary (PEP 578 says so). Without a
  network namespace or privilege drop, a hook bypass reaches the network and the user's files.
* Without root, the code runs as the invoking user: a hook bypass can then signal pytest itself.
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
from dataclasses import dataclass, replace
from typing import IO, Any

from pytest_llmgate.sandbox.child import (
    CODE_NAME,
    NOBODY,
    TESTS_NAME,
    SandboxViolation,
    make_audit_hook,
)

__all__ = [
    "CODE_NAME",
    "DEFAULT_TIMEOUT",
    "TESTS_NAME",
    "Outcome",
    "SandboxPolicy",
    "SandboxRun",
    "SandboxUnavailable",
    "SandboxViolation",
    "collect_test_names",
    "make_audit_hook",
    "run_python_tests",
]

RUNNER_FILE = "runner.py"
DEFAULT_TIMEOUT = 10.0
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MAX_EVENT_BYTES = 1 << 20
MAX_NOTES = 10


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
    kind: str = ""  # "" (an ordinary failure), "untrusted" (compared the code's object), "broken"


@dataclass(frozen=True)
class SandboxRun:
    """What happened, as the tests process reported it on its own pipe (the code has no say)."""

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
    noticed: tuple[str, ...] = ()
    broken: str | None = None
    network_namespace: bool = False
    uid: int | None = None
    launch_error: str | None = None

    @property
    def passed(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.passed)

    @property
    def total(self) -> int:
        return len(self.test_names)

    @property
    def cheated(self) -> bool:
        """The code compared as something other than plain data, or tampered with its interpreter."""
        return bool(self.noticed) or any(outcome.kind == "untrusted" for outcome in self.outcomes)

    @property
    def weaker(self) -> tuple[str, ...]:
        """Which of the strong layers were not in force (empty when all were)."""
        missing = []
        if self.uid is not None and (self.uid == 0 or (self.uid == os.geteuid() and self.uid != NOBODY)):
            missing.append(f"the code ran as uid {self.uid}")
        if not self.network_namespace:
            missing.append("no network namespace (the audit hook alone blocks sockets)")
        return tuple(missing)


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


# --- running the two processes -----------------------------------------------------------------


def run_python_tests(
    code: str, tests: str, policy: SandboxPolicy | None = None, names: Sequence[str] | None = None
) -> SandboxRun:
    """Run `tests` against `code` in two sandboxed child processes and report what happened."""
    if os.name != "posix":
        raise SandboxUnavailable("python-tests needs a POSIX system (Linux or macOS) to sandbox the code")
    import shutil
    import tempfile

    policy = policy or SandboxPolicy()
    names = tuple(names) if names is not None else collect_test_names(tests)
    root = os.geteuid() == 0
    drop = policy.drop_privileges and root
    code_dir = os.path.realpath(tempfile.mkdtemp(prefix="llmgate-sandbox-"))
    tests_dir = os.path.realpath(tempfile.mkdtemp(prefix="llmgate-tests-"))
    try:
        for folder in (code_dir, tests_dir):
            with open(os.path.join(os.path.dirname(__file__), "child.py"), encoding="utf-8") as source:
                runner = source.read()
            with open(os.path.join(folder, RUNNER_FILE), "w", encoding="utf-8") as target:
                target.write(runner)
        if drop:
            os.chown(code_dir, NOBODY, NOBODY)
        return _Run(policy, names, code_dir, tests_dir).go(
            {"code": code, "drop": drop, "nproc": root},
            {"tests": tests, "names": list(names)},
            drop=drop,
        )
    finally:
        shutil.rmtree(code_dir, ignore_errors=True)
        shutil.rmtree(tests_dir, ignore_errors=True)


class _Run:
    def __init__(self, policy: SandboxPolicy, names: tuple[str, ...], code_dir: str, tests_dir: str) -> None:
        self.policy, self.names = policy, names
        self.code_dir, self.tests_dir = code_dir, tests_dir

    def go(self, code_payload: dict[str, Any], tests_payload: dict[str, Any], *, drop: bool) -> SandboxRun:
        import subprocess
        import tempfile
        import time

        to_code_r, to_code_w = os.pipe()
        to_tests_r, to_tests_w = os.pipe()
        events_r, events_w = os.pipe()
        parent_ends = [to_code_r, to_code_w, to_tests_r, to_tests_w, events_w]
        netns = _netns_id()
        interpreter = [os.path.realpath(sys.executable), "-I", "-S", "-B", "-X", "utf8"]
        code_runner = os.path.join(self.code_dir, RUNNER_FILE)
        tests_runner = os.path.join(self.tests_dir, RUNNER_FILE)
        code_fds = [str(to_code_r), str(to_tests_w)]
        tests_fds = [str(to_tests_r), str(to_code_w), str(events_w)]
        code_err = tempfile.TemporaryFile()
        tests_err = tempfile.TemporaryFile()
        processes: list[subprocess.Popen[bytes]] = []
        deadline = time.monotonic() + self.policy.timeout
        try:
            try:
                solution = self._spawn(
                    subprocess,
                    [*interpreter, code_runner, "solution", self.code_dir, netns, *code_fds],
                    self.code_dir,
                    code_payload,
                    code_err,
                    (to_code_r, to_tests_w),
                    _ChildSetup(self.policy, nproc=os.geteuid() != 0),
                )
                processes.append(solution)
                # Set before exec (preexec_fn), so final now, and seen from here, not claimed.
                code_netns = _netns_id(solution.pid)
                tester = self._spawn(
                    subprocess,
                    [*interpreter, tests_runner, "tests", self.tests_dir, netns, *tests_fds],
                    self.tests_dir,
                    tests_payload,
                    tests_err,
                    (to_tests_r, to_code_w, events_w),
                    _ChildSetup(self.policy, nproc=False),
                )
                processes.append(tester)
            except (OSError, subprocess.SubprocessError) as exc:
                return SandboxRun(self.names, launch_error=f"{type(exc).__name__}: {exc}")
            finally:
                for fd in parent_ends:
                    os.close(fd)
            lines, timed_out, code_uid = self._read_events(events_r, deadline, solution.pid)
        finally:
            for process in processes:
                _kill_group(process.pid)
                process.wait()
            os.close(events_r)
        run = _parse_events(
            self.names,
            lines,
            timed_out=timed_out,
            returncode=tester.returncode,
            stderr_tail=_tail(tests_err),
        )
        code_tail = _tail(code_err)
        code_err.close()
        tests_err.close()
        if code_uid is None and (run.uid is None or os.geteuid() != 0):
            code_uid = run.uid if os.geteuid() == 0 else os.geteuid()
        return replace(
            run,
            uid=code_uid if code_uid is not None else run.uid,
            network_namespace=bool(netns and code_netns and code_netns != netns),
            broken=_broken(run, solution, code_tail),
        )

    def _spawn(
        self,
        subprocess: Any,
        argv: list[str],
        cwd: str,
        payload: dict[str, Any],
        stderr: IO[bytes],
        fds: tuple[int, ...],
        setup: _ChildSetup,
    ) -> Any:
        import tempfile

        with tempfile.TemporaryFile() as stdin:  # unlinked: no path another process could open
            stdin.write(json.dumps(payload).encode())
            stdin.seek(0)
            return subprocess.Popen(
                argv,
                cwd=cwd,
                env={},
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=fds,
                start_new_session=True,
                preexec_fn=setup,
                close_fds=True,
            )

    def _read_events(self, fd: int, deadline: float, code_pid: int) -> tuple[list[str], bool, int | None]:
        import select
        import time

        data = b""
        code_uid: int | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return data.decode("utf-8", "replace").splitlines(), True, code_uid
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return data.decode("utf-8", "replace").splitlines(), False, code_uid
            if len(data) < MAX_EVENT_BYTES:
                data += chunk
            if code_uid is None and b'"event": "solution"' in data:
                code_uid = _process_uid(code_pid)


class _ChildSetup:
    """The preexec_fn: runs in the forked child before exec. Everything it needs is looked up in the
    parent (no imports after fork); every layer is best effort, the runner reports what took."""

    def __init__(self, policy: SandboxPolicy, *, nproc: bool) -> None:
        import math
        import resource
        import signal

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
        limit = getattr(resource, "RLIMIT_NPROC", None)
        if nproc and limit is not None:
            # Root's code process sets this itself, after its uid change.
            self.limits.append((limit, (0, 0)))
        self.signal, self.sigxfsz, self.ignore = (
            signal.signal,
            getattr(signal, "SIGXFSZ", None),
            signal.SIG_IGN,
        )
        self.root = os.geteuid() == 0

    def __call__(self) -> None:
        if self.unshare is not None:
            self.unshare(CLONE_NEWNET if self.root else CLONE_NEWUSER | CLONE_NEWNET)
        for limit, values in self.limits:
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


def _netns_id(pid: int | None = None) -> str:
    try:
        return os.readlink(f"/proc/{pid or 'self'}/ns/net")
    except OSError:
        return ""


def _process_uid(pid: int) -> int | None:
    """The real uid of `pid` as the kernel sees it from here (the code's own claim is not trusted)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _kill_group(pgid: int) -> None:
    import signal

    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(stream: IO[bytes], size: int = 2000) -> str:
    try:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(0, stream.tell() - size))
        return stream.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def _broken(run: SandboxRun, solution: Any, stderr_tail: str) -> str | None:
    """The parent's account of a broken solution process: only it knows how that process ended."""
    if run.broken is None:
        return None
    where, _, why = run.broken.partition("|")
    if why != "ended":
        return f"the code {why} {where}: it broke the runner"
    code = solution.returncode
    if code is not None and code < 0:
        status = f"killed by {_signal_name(-code)}"
    else:
        status = f"exit status {code}"
    last = [line for line in stderr_tail.strip().splitlines() if line.strip()][-1:]
    said = f"; it printed {last[0].strip()[:200]!r}" if last else ""
    return f"the code ended its process {where} ({status}): it broke the runner{said}"


def _signal_name(number: int) -> str:
    import signal

    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    return f"{name} (CPU time limit)" if name == "SIGXCPU" else name


def _parse_events(
    names: tuple[str, ...], lines: list[str], *, timed_out: bool, returncode: int | None, stderr_tail: str
) -> SandboxRun:
    events: list[dict[str, Any]] = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    outcomes: dict[str, Outcome] = {}
    running = setup_error = broken = None
    started = finished = network_namespace = False
    claimed_uid: int | None = None
    blocked: list[str] = []
    noticed: list[str] = []
    for event in events:
        kind, name = event.get("event"), event.get("test")
        if kind == "started":
            started = True
        elif kind == "solution":
            network_namespace = event.get("netns") is True
            claimed_uid = event.get("uid") if type(event.get("uid")) is int else None
        elif kind == "running" and name in names:
            running = str(name)
        elif kind in ("passed", "failed") and name in names and name not in outcomes:
            outcomes[str(name)] = Outcome(
                str(name), kind == "passed", str(event.get("error", "")), str(event.get("kind", ""))
            )
            running = None
        elif kind == "setup_error" and setup_error is None:
            setup_error = str(event.get("error", ""))
        elif kind == "broken" and broken is None:
            where = f"during {name}" if name in names else "before any test ran"
            broken = f"{where}|{str(event.get('why', 'ended'))[:200]}"
        elif kind == "blocked" and len(blocked) < MAX_NOTES:
            blocked.append(str(event.get("what", "")))
        elif kind == "noticed" and len(noticed) < MAX_NOTES:
            noticed.append(str(event.get("what", "")))
        elif kind == "done":
            finished = True
    return SandboxRun(
        test_names=names,
        outcomes=tuple(outcomes[name] for name in names if name in outcomes),
        started=started,
        finished=finished,
        setup_error=setup_error,
        timed_out=timed_out,
        running=running,
        returncode=returncode,
        stderr_tail=stderr_tail,
        blocked=tuple(blocked),
        noticed=tuple(noticed),
        broken=broken,
        network_namespace=network_namespace,
        uid=claimed_uid,
    )
