"""The sandbox's child processes: this file is copied into each child's folder and run there.

`python -I -S -B runner.py solution ...` runs the model's code and serves requests about it;
`python -I -S -B runner.py tests ...` runs the user's tests against proxies of that code. The two
talk over a pair of pipes in length-prefixed JSON, and only the tests process reports to the parent
(on a pipe of its own). The solution process never receives the tests, so nothing it can do to its
own interpreter (patching json or builtins, reading frames, forging files, exiting) reaches the
verdict. Values cross from the code to the tests as plain data, decoded by exact type: a custom
object stays in the solution process and the tests get a handle, which refuses to be compared.

Stdlib only, and importable by the parent too (for the audit hook and the wire format in tests).
"""

from __future__ import annotations

import builtins
import collections
import datetime
import decimal
import fractions
import json
import linecache
import operator
import os
import struct
import sys
import traceback
import types
from collections.abc import Callable, Sequence
from itertools import zip_longest
from typing import Any

try:
    import resource
except ImportError:  # pragma: no cover - Windows, where the parent refuses to run anyway
    resource = None  # type: ignore[assignment]

# Every module the runner relies on is imported above, before the audit hook and before the code:
# after the privilege drop the solution process may not be able to read the standard library again.

CODE_NAME = "solution.py"
TESTS_NAME = "test_solution.py"
NOBODY = 65534
MAX_FRAME = 16 << 20
MAX_DEPTH = 100
MAX_NOTES = 10
MAX_TEXT = 500
MAX_CONSTANT = 1 << 20

PLAIN_HINT = "a value the tests compare must be plain data (int, str, list, dict, ...)"


# --- wire format -------------------------------------------------------------------------------


class WireError(Exception):
    """A frame or a value that breaks the protocol: the other side broke the runner."""


class PeerGone(Exception):
    """The other process closed its end of the pipe (it exited or crashed)."""


def _read_exact(fd: int, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise PeerGone("end of file")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class Channel:
    """Frames of `4-byte big-endian length + JSON object` over two file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode("ascii")
        if len(data) > MAX_FRAME:
            raise WireError(f"a message of {len(data)} bytes (the limit is {MAX_FRAME})")
        view = memoryview(struct.pack(">I", len(data)) + data)
        try:
            while view:
                view = view[os.write(self.write_fd, view) :]
        except BrokenPipeError as exc:
            raise PeerGone("the pipe is closed") from exc

    def receive(self) -> dict[str, Any]:
        (size,) = struct.unpack(">I", _read_exact(self.read_fd, 4))
        if size > MAX_FRAME:
            raise WireError(f"a message of {size} bytes (the limit is {MAX_FRAME})")
        try:
            message = json.loads(_read_exact(self.read_fd, size))
        except (ValueError, RecursionError) as exc:
            raise WireError(f"a message that is not JSON ({type(exc).__name__})") from exc
        if type(message) is not dict:
            raise WireError("a message that is not a JSON object")
        return message


_BUILTIN_FACTORIES: dict[str, Any] = {
    kind.__name__: kind for kind in (int, float, str, list, dict, set, tuple, frozenset, bool)
}


class Codec:
    """Tagged JSON for plain data, by exact type; everything else becomes a reference (`to_ref`).

    Decoding builds only plain values (and, through `from_ref`, proxies): it never evaluates
    anything and rejects any node that is not exactly what an encoder writes.
    """

    def __init__(self, to_ref: Callable[[Any], list[Any]], from_ref: Callable[[list[Any]], Any]) -> None:
        self.to_ref, self.from_ref = to_ref, from_ref

    def encode(self, value: Any, depth: int = 0) -> list[Any]:
        kind = type(value)
        if value is None:
            return ["N"]
        if kind is bool:
            return ["b", value]
        if kind is int:
            return ["i", format(value, "x")]
        if kind is float:
            return ["f", value.hex()]
        if kind is complex:
            return ["c", value.real.hex(), value.imag.hex()]
        if kind is str:
            return ["s", value]
        if kind is bytes:
            return ["y", value.hex()]
        if kind is bytearray:
            return ["Y", value.hex()]
        if kind is range:
            return ["r", *(format(part, "x") for part in (value.start, value.stop, value.step))]
        if kind is fractions.Fraction:
            return ["Q", format(value.numerator, "x"), format(value.denominator, "x")]
        if kind is decimal.Decimal:
            return ["M", str(value)]
        if kind is datetime.timedelta:
            return ["td", value.days, value.seconds, value.microseconds]
        if kind is datetime.date:
            return ["dt", value.isoformat()]
        if kind is datetime.datetime and value.tzinfo in (None, datetime.timezone.utc):
            return ["dT", value.isoformat()]
        if depth < MAX_DEPTH:
            inner = depth + 1
            if kind is list:
                return ["l", [self.encode(item, inner) for item in value]]
            if kind is tuple:
                return ["t", [self.encode(item, inner) for item in value]]
            if kind is set:
                return ["S", [self.encode(item, inner) for item in value]]
            if kind is frozenset:
                return ["F", [self.encode(item, inner) for item in value]]
            if kind in (dict, collections.OrderedDict, collections.Counter):
                tag = {dict: "d", collections.OrderedDict: "O", collections.Counter: "C"}[kind]
                return [tag, [[self.encode(k, inner), self.encode(v, inner)] for k, v in value.items()]]
            if kind is collections.defaultdict:
                factory = value.default_factory
                name = factory.__name__ if factory in _BUILTIN_FACTORIES.values() else None
                pairs = [[self.encode(k, inner), self.encode(v, inner)] for k, v in value.items()]
                return ["D", name, pairs]
            if kind is collections.deque:
                return ["q", [self.encode(item, inner) for item in value], value.maxlen]
        return self.to_ref(value)

    def decode(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH + 1 or type(node) is not list or not node or type(node[0]) is not str:
            raise WireError(f"a value that is not a tagged node: {_clip(repr(node), 80)}")
        tag, size = node[0], len(node)
        try:
            if tag == "N" and size == 1:
                return None
            if tag == "b" and size == 2 and type(node[1]) is bool:
                return node[1]
            if tag == "i" and size == 2:
                return _hex_int(node[1])
            if tag == "f" and size == 2 and type(node[1]) is str:
                return float.fromhex(node[1])
            if tag == "c" and size == 3 and type(node[1]) is str and type(node[2]) is str:
                return complex(float.fromhex(node[1]), float.fromhex(node[2]))
            if tag == "s" and size == 2 and type(node[1]) is str:
                return node[1]
            if tag in ("y", "Y") and size == 2 and type(node[1]) is str:
                data = bytes.fromhex(node[1])
                return data if tag == "y" else bytearray(data)
            if tag == "r" and size == 4:
                return range(_hex_int(node[1]), _hex_int(node[2]), _hex_int(node[3]))
            if tag == "Q" and size == 3:
                return fractions.Fraction(_hex_int(node[1]), _hex_int(node[2]))
            if tag == "M" and size == 2 and type(node[1]) is str and len(node[1]) < 10_000:
                return decimal.Decimal(node[1])
            if tag == "td" and size == 4 and all(type(part) is int for part in node[1:]):
                return datetime.timedelta(node[1], node[2], node[3])
            if tag == "dt" and size == 2 and type(node[1]) is str:
                return datetime.date.fromisoformat(node[1])
            if tag == "dT" and size == 2 and type(node[1]) is str:
                return datetime.datetime.fromisoformat(node[1])
            items = self._items(node, depth)
            if items is not None:
                return items
        except (ValueError, TypeError, OverflowError, ArithmeticError, decimal.InvalidOperation) as exc:
            detail = f"{type(exc).__name__}: {_clip(str(exc), 80)}"
            raise WireError(f"a malformed {tag!r} value ({detail})") from exc
        if tag in ("h", "cb"):
            return self.from_ref(node)
        raise WireError(f"a value with an unknown shape: {_clip(repr(node), 80)}")

    def _items(self, node: list[Any], depth: int) -> Any:
        tag, size, inner = node[0], len(node), depth + 1
        if tag in ("l", "t", "S", "F") and size == 2 and type(node[1]) is list:
            items = [self.decode(item, inner) for item in node[1]]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        if tag in ("d", "O", "C") and size == 2 and type(node[1]) is list:
            pairs = self._pairs(node[1], inner)
            if tag == "C":
                return collections.Counter(dict(pairs))  # Counter(pairs) would count the pairs
            return collections.OrderedDict(pairs) if tag == "O" else dict(pairs)
        if tag == "D" and size == 3 and type(node[2]) is list:
            factory = _BUILTIN_FACTORIES.get(node[1]) if type(node[1]) is str else None
            if node[1] is not None and factory is None:
                raise WireError("a defaultdict with an unknown factory")
            return collections.defaultdict(factory, self._pairs(node[2], inner))
        if tag == "q" and size == 3 and type(node[1]) is list and (node[2] is None or type(node[2]) is int):
            return collections.deque((self.decode(item, inner) for item in node[1]), node[2])
        return None

    def _pairs(self, raw: list[Any], depth: int) -> list[tuple[Any, Any]]:
        pairs = []
        for pair in raw:
            if type(pair) is not list or len(pair) != 2:
                raise WireError("a mapping entry that is not a [key, value] pair")
            pairs.append((self.decode(pair[0], depth), self.decode(pair[1], depth)))
        return pairs


def _hex_int(raw: Any) -> int:
    if type(raw) is not str or not raw or raw.lstrip("-").strip("0123456789abcdef"):
        raise ValueError("not a hexadecimal integer")
    return int(raw, 16)


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- the audit hook ----------------------------------------------------------------------------


class SandboxViolation(PermissionError):
    """Raised by the audit hook; a PermissionError so stdlib fallbacks (tempfile's probing of /tmp,
    for one) treat it like any refused access."""


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
# Introspection that can only be looking for something outside the code itself: noted, not refused
# (the stdlib uses some of it, e.g. namedtuple calls sys._getframe), when the code calls it directly.
_INTROSPECTION_EVENTS = frozenset(
    {
        "sys._getframe",
        "sys._current_frames",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "sys.settrace",
        "sys.setprofile",
    }
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_ALWAYS_OPEN = ("/dev/null",)


def make_audit_hook(
    workdir: str,
    readable: Sequence[str],
    report: Callable[[str], None],
    notice: Callable[[str], None] | None = None,
) -> Callable[[str, tuple[Any, ...]], None]:
    """The children's audit hook: refuse writes outside `workdir`, reads outside `readable`, and the
    events above. `report` is told each refusal, `notice` each introspection by the code itself."""
    write_roots = (workdir,)
    read_roots = (workdir, *readable)
    busy = [False]

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

    def introspected(event: str) -> None:
        if notice is None or busy[0]:
            return
        busy[0] = True
        try:
            caller = sys._getframe(2)  # 0: this function, 1: the hook, 2: who called the C function
            helper = caller.f_code.co_filename.endswith(("inspect.py", "traceback.py"))
            origin = caller.f_back if helper else caller
            if origin is not None and origin.f_code.co_filename == CODE_NAME:
                notice(f"{event} at {CODE_NAME}:{origin.f_lineno}")
        finally:
            busy[0] = False

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
        elif event in _INTROSPECTION_EVENTS:
            introspected(event)

    return hook


# --- shared child helpers ------------------------------------------------------------------------


def describe_exception(exc: BaseException) -> str:
    """`Kind: message (file:line)`, one line; a bare `assert` shows its source line instead."""
    try:
        text = str(exc).strip()
    except Exception:
        text = ""
    message = text.splitlines()[0][:200] if text else ""
    last = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in (CODE_NAME, TESTS_NAME):
            last = frame
    if isinstance(exc, AssertionError) and not message and last is not None and last.line:
        message = f"`{last.line.strip()}`"
    remote = getattr(exc, "_llmgate_where", None) if isinstance(exc, Exception) else None
    where = f" ({remote})" if remote else f" ({last.filename}:{last.lineno})" if last is not None else ""
    return f"{type(exc).__name__}{': ' + message if message else ''}{where}"


def _prime_linecache(filename: str, source: str) -> None:
    """Let tracebacks show lines of code that exists only in memory (mtime None: never re-checked)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)


def _netns_id() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


def _read_payload() -> dict[str, Any]:
    payload = json.loads(sys.stdin.buffer.read() or b"{}")
    return payload if type(payload) is dict else {}


def _finish() -> None:
    sys.stdout.flush()
    # Skip atexit handlers and finalizers: nothing registered in here deserves to run.
    os._exit(0)


# --- the solution process ----------------------------------------------------------------------


_OPERATORS: dict[str, Callable[..., Any]] = {
    name: getattr(operator, name)
    for name in (
        "add sub mul truediv floordiv mod pow matmul and_ or_ xor lshift rshift "
        "iadd isub imul itruediv ifloordiv imod ipow imatmul iand ior ixor ilshift irshift "
        "neg pos abs invert"
    ).split()
}
_MUTABLE = (list, dict, set, bytearray)
# What the code could patch to fake results in an in-process runner; any replacement is noted.
_WATCHED_MODULES = ("builtins", "json", "os", "struct", "sys", "operator", "traceback")


def _drop_privileges(uid: int) -> str:
    """setgid/setuid to `uid` inside the runner (started as root, so it could read its interpreter).

    sys.path entries `uid` cannot read any more (a pyenv under /root, mode 700) are kept reachable
    through directory descriptors opened before the drop: /proc/self/fd/N never re-checks the
    folders above N, and what lies below is world-readable. Returns "" or why the drop failed.
    """
    held: dict[str, int] = {}
    for entry in sys.path:
        if entry and os.path.isdir(entry):
            try:
                held[entry] = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                pass
    try:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    except OSError as exc:
        for fd in held.values():
            os.close(fd)
        return f"{type(exc).__name__}: {exc}"
    aliases: dict[str, str] = {}
    for position, entry in enumerate(list(sys.path)):
        held_fd = held.get(entry)
        if held_fd is not None and not os.access(entry, os.R_OK | os.X_OK):
            alias = f"/proc/self/fd/{held_fd}"
            if os.access(alias, os.R_OK | os.X_OK):
                sys.path[position] = alias
                aliases[entry.rstrip(os.sep) + os.sep] = alias + os.sep
    # Packages already imported (encodings, for one) find their submodules through __path__.
    for module in list(sys.modules.values()):
        paths = getattr(module, "__path__", None)
        if type(paths) is list:
            for index, path in enumerate(paths):
                for prefix, alias_prefix in aliases.items():
                    if (path + os.sep).startswith(prefix):
                        paths[index] = alias_prefix + path[len(prefix) :]
    sys.path_importer_cache.clear()
    return ""


class SolutionServer:
    """Holds the code's objects (by handle number) and answers the tests process's requests."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.objects: dict[int, Any] = {}
        self.numbers: dict[int, int] = {}
        self.classes: set[int] = set()
        self.codec = Codec(self._to_ref, self._from_ref)
        self.blocked: list[str] = []
        self.noticed: list[str] = []
        self.sent_blocked = self.sent_noticed = 0
        self.watched = self._snapshot()

    # references

    def number(self, value: Any) -> int:
        number = self.numbers.get(id(value))
        if number is None:
            number = len(self.objects) + 1
            self.objects[number] = value
            self.numbers[id(value)] = number
        return number

    def _to_ref(self, value: Any) -> list[Any]:
        kind = type(value)
        class_number = self.numbers.get(id(kind))
        try:
            name = f"{kind.__module__}.{kind.__qualname__}"
        except Exception:
            name = "object"
        known = class_number if class_number in self.classes else None
        return ["h", self.number(value), known, _clip(name, 200)]

    def _from_ref(self, node: list[Any]) -> Any:
        if node[0] == "h" and len(node) == 2 and node[1] in self.objects:
            return self.objects[node[1]]
        if node[0] == "cb" and len(node) == 2 and type(node[1]) is int:
            callback_number = node[1]

            def callback(*args: Any, **kwargs: Any) -> Any:
                return self.callback(callback_number, args, kwargs)

            return callback
        raise WireError("an unknown reference")

    # the module

    def describe_module(self, module: types.ModuleType) -> list[list[Any]]:
        entries: list[list[Any]] = []
        for name, value in list(vars(module).items()):
            if name.startswith("__") and name.endswith("__"):
                continue
            if isinstance(value, types.ModuleType):
                entries.append([name, ["module", str(value.__name__)]])
            elif isinstance(value, type) and value.__module__ == "solution":
                entries.append([name, self.describe_class(value)])
            else:
                encoded = self.codec.encode(value)
                if len(json.dumps(encoded)) > MAX_CONSTANT:
                    encoded = self._to_ref(value)
                entries.append([name, ["value", encoded]])
        return entries

    def describe_class(self, cls: type) -> list[Any]:
        number = self.number(cls)
        self.classes.add(number)
        bases = [self.describe_class(base) for base in cls.__bases__ if base.__module__ == "solution"]
        builtin = next(
            (k.__name__ for k in cls.__mro__ if getattr(builtins, k.__name__, None) is k and k is not object),
            None,
        )
        return ["class", number, cls.__name__, bases, builtin]

    # serving

    def serve_forever(self) -> None:
        while True:
            message = self.channel.receive()
            if message.get("op") == "bye":
                return
            self.answer(message)

    def answer(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(self.serve(message))
        except WireError as exc:  # too large to send: say so instead
            text = f"the value is too large to send to the tests: {exc}"
            self.channel.send({"raise": {"name": "MemoryError", "base": "MemoryError", "text": text}})

    def serve(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        try:
            result, back = self._perform(op, message)
            reply: dict[str, Any] = {"ok": self.codec.encode(result)}
            if back:
                reply["back"] = [[key, self.codec.encode(value)] for key, value in back]
        except (PeerGone, WireError):
            raise
        except BaseException as exc:
            reply = {"raise": self.describe_raise(exc)}
        return self.with_notes(reply)

    def with_notes(self, reply: dict[str, Any]) -> dict[str, Any]:
        changed = self._tampered()
        for note in changed:
            if note not in self.noticed and len(self.noticed) < MAX_NOTES:
                self.noticed.append(note)
        if len(self.blocked) > self.sent_blocked:
            reply["blocked"] = self.blocked[self.sent_blocked :]
            self.sent_blocked = len(self.blocked)
        if len(self.noticed) > self.sent_noticed:
            reply["noticed"] = self.noticed[self.sent_noticed :]
            self.sent_noticed = len(self.noticed)
        return reply

    def _perform(self, op: Any, message: dict[str, Any]) -> tuple[Any, list[tuple[Any, Any]]]:
        target = self.objects[message["h"]]
        decode = self.codec.decode
        if op == "call":
            args = [decode(item) for item in message["args"]]
            kwargs = {str(key): decode(value) for key, value in message["kwargs"]}
            result = target(*args, **kwargs)
            back: list[tuple[Any, Any]] = [(i, a) for i, a in enumerate(args) if type(a) in _MUTABLE]
            back += [(k, v) for k, v in kwargs.items() if type(v) in _MUTABLE]
            return result, back
        if op == "getattr":
            return getattr(target, str(message["name"])), []
        if op == "setattr":
            setattr(target, str(message["name"]), decode(message["value"]))
            return None, []
        if op == "delattr":
            delattr(target, str(message["name"]))
            return None, []
        if op == "getitem":
            return target[decode(message["key"])], []
        if op == "setitem":
            target[decode(message["key"])] = decode(message["value"])
            return None, []
        if op == "delitem":
            del target[decode(message["key"])]
            return None, []
        if op == "operator":
            function = _OPERATORS[str(message["name"])]
            operands = [target] + [decode(item) for item in message["others"]]
            if message.get("reflected"):
                operands.reverse()
            return function(*operands), []
        if op == "format":
            return format(target, str(message["spec"])), []
        if op == "exit":
            return target.__exit__(None, None, None), []
        simple: dict[str, Callable[[Any], Any]] = {
            "iter": iter,
            "next": next,
            "len": len,
            "bool": bool,
            "str": str,
            "repr": repr,
            "int": int,
            "float": float,
            "index": operator.index,
            "enter": lambda value: value.__enter__(),
        }
        return simple[str(op)](target), []

    def describe_raise(self, exc: BaseException) -> dict[str, Any]:
        kind = type(exc)
        base = next((k for k in kind.__mro__ if getattr(builtins, k.__name__, None) is k), Exception)
        where = ""
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == CODE_NAME:
                where = f"{CODE_NAME}:{frame.lineno}"
        try:
            text = _clip(str(exc))
        except Exception:
            text = ""
        try:
            args = self.codec.encode(tuple(exc.args))
        except Exception:
            args = ["t", []]
        attributes = []
        for name, value in list(getattr(exc, "__dict__", {}).items())[:20]:
            if type(name) is str and not name.startswith("_"):
                try:
                    attributes.append([name, self.codec.encode(value)])
                except Exception:
                    continue
        number = self.numbers.get(id(kind))
        return {
            "name": _clip(kind.__name__, 100),
            "module": _clip(str(kind.__module__), 100),
            "class": number if number in self.classes else None,
            "base": base.__name__,
            "args": args,
            "attributes": attributes,
            "text": text,
            "where": where,
        }

    def callback(self, number: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call a function the tests passed in: it runs in the tests process, on plain data."""
        self.channel.send(
            self.with_notes(
                {
                    "op": "callback",
                    "fn": number,
                    "args": [self.codec.encode(item) for item in args],
                    "kwargs": [[key, self.codec.encode(value)] for key, value in kwargs.items()],
                }
            )
        )
        while True:
            message = self.channel.receive()
            if "op" in message:
                self.answer(message)
                continue
            if "ok" in message:
                return self.codec.decode(message["ok"])
            raised = message.get("raise") or {}
            kind = getattr(builtins, str(raised.get("base")), RuntimeError)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError
            raise kind(str(raised.get("text", "")))

    # tampering

    def _snapshot(self) -> list[tuple[str, Any, str, Any]]:
        """(label, where to look, name, what was there) for every watched entry; the originals are
        kept, so replacing a whole module is one finding, not one per attribute."""
        watched: list[tuple[str, Any, str, Any]] = []
        for module_name in _WATCHED_MODULES:
            module = sys.modules[module_name]
            watched.append((f"sys.modules[{module_name!r}]", sys.modules, module_name, module))
            for name, value in vars(module).items():
                if callable(value) and not name.startswith("_"):
                    watched.append((f"{module_name}.{name}", vars(module), name, value))
        return watched

    def _tampered(self) -> list[str]:
        watched = self.watched
        return [f"replaced {label}" for label, where, name, was in watched if where.get(name) is not was]


def solution_main(argv: Sequence[str]) -> int:
    """The solution process: drop privileges, guard, run the code, then serve the tests process."""
    workdir, parent_netns = argv[2], argv[3]
    channel = Channel(int(argv[4]), int(argv[5]))
    payload = _read_payload()
    code = str(payload.get("code", ""))
    readable = [os.path.realpath(entry) for entry in sys.path if entry]
    drop_error = _drop_privileges(NOBODY) if payload.get("drop") else ""
    if payload.get("nproc") and resource is not None:
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        except (OSError, ValueError, AttributeError):
            pass
    own_netns = _netns_id()
    server = SolutionServer(channel)
    _prime_linecache(CODE_NAME, code)
    os.environ["TMPDIR"] = workdir  # the one variable the code sees: tempfile then stays inside

    def report(what: str) -> None:
        if len(server.blocked) < MAX_NOTES and what not in server.blocked:
            server.blocked.append(what)

    def notice(what: str) -> None:
        if len(server.noticed) < MAX_NOTES and what not in server.noticed:
            server.noticed.append(what)

    sys.addaudithook(make_audit_hook(workdir, readable, report, notice))
    started = {
        "uid": os.getuid(),
        "netns": bool(parent_netns and own_netns and own_netns != parent_netns),
        "drop_error": drop_error,
    }
    solution = types.ModuleType("solution")
    solution.__file__ = os.path.join(workdir, CODE_NAME)
    sys.modules["solution"] = solution
    try:
        try:
            exec(compile(code, CODE_NAME, "exec"), solution.__dict__)
        except BaseException as exc:
            error = f"the code raised {describe_exception(exc)} before any test ran"
            channel.send(server.with_notes({"op": "setup_error", "error": error, **started}))
        else:
            ready = {"op": "ready", "names": server.describe_module(solution), **started}
            channel.send(server.with_notes(ready))
            server.serve_forever()
    except (PeerGone, WireError):
        pass
    _finish()
    return 0


# --- the tests process ---------------------------------------------------------------------------


class NotPlainData(BaseException):
    """A test compared a value the code owns. A BaseException, so `except Exception` and
    `pytest.raises(Exception)` in a test cannot swallow it (the runner also remembers it)."""


class SolutionBroken(BaseException):
    """The solution process ended or broke the protocol; no further request can be answered."""


def _plain_error(value: Any, what: str) -> NotPlainData:
    kind = object.__getattribute__(value, "_llmgate_type")
    return NotPlainData(
        f"the code returned a {kind} object where plain data was expected ({what}); {PLAIN_HINT}: "
        "a custom __eq__ could fake a pass, so comparing the code's own objects counts as cheating"
    )


class RemoteObject:
    """A handle on an object living in the solution process: attribute access, calls, iteration,
    items, str/repr and arithmetic are asked there; comparisons are refused here."""

    __slots__ = ("_llmgate_number", "_llmgate_peer", "_llmgate_type")

    def _llmgate(self, op: str, **fields: Any) -> Any:
        peer = object.__getattribute__(self, "_llmgate_peer")
        return peer.request(op, h=object.__getattribute__(self, "_llmgate_number"), **fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_llmgate"):
            raise AttributeError(name)
        return self._llmgate("getattr", name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        peer = object.__getattribute__(self, "_llmgate_peer")
        self._llmgate("setattr", name=name, value=peer.codec.encode(value))

    def __delattr__(self, name: str) -> None:
        self._llmgate("delattr", name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        peer = object.__getattribute__(self, "_llmgate_peer")
        return peer.call(object.__getattribute__(self, "_llmgate_number"), args, kwargs)

    def __iter__(self) -> Any:
        return self._llmgate("iter")

    def __next__(self) -> Any:
        return self._llmgate("next")

    def __len__(self) -> int:
        return self._llmgate("len")  # type: ignore[no-any-return]

    def __bool__(self) -> bool:
        # Truth asks the code: the request carries no operand, so the code learns nothing it could
        # tailor an answer to (a rigged __bool__ is no better than returning True every time).
        return self._llmgate("bool")  # type: ignore[no-any-return]

    def __getitem__(self, key: Any) -> Any:
        peer = object.__getattribute__(self, "_llmgate_peer")
        return self._llmgate("getitem", key=peer.codec.encode(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        peer = object.__getattribute__(self, "_llmgate_peer")
        self._llmgate("setitem", key=peer.codec.encode(key), value=peer.codec.encode(value))

    def __delitem__(self, key: Any) -> None:
        peer = object.__getattribute__(self, "_llmgate_peer")
        self._llmgate("delitem", key=peer.codec.encode(key))

    def __str__(self) -> str:
        return self._llmgate("str")  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return self._llmgate("repr")  # type: ignore[no-any-return]

    def __format__(self, spec: str) -> str:
        return self._llmgate("format", spec=spec)  # type: ignore[no-any-return]

    def __int__(self) -> int:
        return self._llmgate("int")  # type: ignore[no-any-return]

    def __float__(self) -> float:
        return self._llmgate("float")  # type: ignore[no-any-return]

    def __index__(self) -> int:
        return self._llmgate("index")  # type: ignore[no-any-return]

    def __enter__(self) -> Any:
        return self._llmgate("enter")

    def __exit__(self, *exc_info: object) -> Any:
        return self._llmgate("exit")

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True  # the very same object of the code: identity needs no trust
        raise self._refuse("compared with ==")

    def __ne__(self, other: object) -> bool:
        if other is self:
            return False
        raise self._refuse("compared with !=")

    def __lt__(self, other: object) -> bool:
        raise self._refuse("compared with <")

    def __le__(self, other: object) -> bool:
        raise self._refuse("compared with <=")

    def __gt__(self, other: object) -> bool:
        raise self._refuse("compared with >")

    def __ge__(self, other: object) -> bool:
        raise self._refuse("compared with >=")

    def __contains__(self, item: object) -> bool:
        raise self._refuse("a membership test with `in`")

    __hash__ = object.__hash__

    def _refuse(self, what: str) -> NotPlainData:
        peer = object.__getattribute__(self, "_llmgate_peer")
        error = _plain_error(self, what)
        peer.untrusted = peer.untrusted or f"NotPlainData: {error}"
        return error


def _operator_method(name: str, reflected: bool = False) -> Callable[..., Any]:
    def method(self: RemoteObject, *others: Any) -> Any:
        peer = object.__getattribute__(self, "_llmgate_peer")
        encoded = [peer.codec.encode(other) for other in others]
        return self._llmgate("operator", name=name, others=encoded, reflected=reflected)

    return method


for _name in "add sub mul truediv floordiv mod pow matmul and or xor lshift rshift".split():
    _function = _name + "_" if _name in ("and", "or") else _name
    setattr(RemoteObject, f"__{_name}__", _operator_method(_function))
    setattr(RemoteObject, f"__r{_name}__", _operator_method(_function, reflected=True))
    setattr(RemoteObject, f"__i{_name}__", _operator_method("i" + _function))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(RemoteObject, f"__{_name}__", _operator_method(_name))


class RemoteClass(type):
    """The metaclass of proxies for the code's classes: calling one builds the object over there,
    a missing class attribute (a classmethod, a constant) is asked there."""

    _llmgate_class_number: int
    _llmgate_class_peer: Peer

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._llmgate_class_peer.call(cls._llmgate_class_number, args, kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith(("_llmgate", "__")):
            raise AttributeError(name)
        return cls._llmgate_class_peer.request("getattr", h=cls._llmgate_class_number, name=name)


def _mirror_str(self: BaseException) -> str:
    text = self.__dict__.get("_llmgate_text")
    return str(text) if text is not None else Exception.__str__(self)


_HIDDEN_MODULES = frozenset({"antigravity", "this", "idlelib", "turtle", "turtledemo", "tkinter"})


class Peer:
    """The tests process's side of the conversation with the solution process."""

    def __init__(self, channel: Channel, forward: Callable[[str, list[str]], None]) -> None:
        self.channel = channel
        self.forward = forward
        self.proxies: dict[int, Any] = {}
        self.classes: dict[int, type] = {}
        self.callbacks: list[Callable[..., Any]] = []
        self.codec = Codec(self._to_ref, self._from_ref)
        self.untrusted: str | None = None
        self.broken: str | None = None
        self._subclasses: dict[tuple[str, str, type], type[BaseException]] = {}

    # references

    def _to_ref(self, value: Any) -> list[Any]:
        if isinstance(value, RemoteObject):
            return ["h", object.__getattribute__(value, "_llmgate_number")]
        number = getattr(value, "_llmgate_class_number", None) if isinstance(value, type) else None
        if type(number) is int and self.classes.get(number) is value:
            return ["h", number]
        if callable(value):
            self.callbacks.append(value)
            return ["cb", len(self.callbacks) - 1]
        raise TypeError(
            f"cannot pass a {type(value).__module__}.{type(value).__qualname__} to the code: only plain "
            "data, the code's own objects and functions cross to it"
        )

    def _from_ref(self, node: list[Any]) -> Any:
        if node[0] != "h" or len(node) != 4 or type(node[1]) is not int:
            raise WireError("a malformed reference")
        number, class_number, type_name = node[1], node[2], node[3]
        if (class_number is not None and type(class_number) is not int) or type(type_name) is not str:
            raise WireError("a malformed reference")
        if number in self.classes:
            return self.classes[number]
        proxy = self.proxies.get(number)
        if proxy is None:
            cls = self.classes.get(class_number) if class_number is not None else None
            if cls is None or not issubclass(cls, RemoteObject):
                cls = RemoteObject
            proxy = object.__new__(cls)
            object.__setattr__(proxy, "_llmgate_number", number)
            object.__setattr__(proxy, "_llmgate_peer", self)
            object.__setattr__(proxy, "_llmgate_type", _clip(type_name, 200))
            self.proxies[number] = proxy
        return proxy

    # the module

    def build_module(self, entries: Any) -> types.ModuleType:
        if type(entries) is not list:
            raise WireError("a module description that is not a list")
        module = types.ModuleType("solution")
        for entry in entries:
            if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not str:
                raise WireError("a malformed module entry")
            name, description = entry
            if type(description) is not list or not description:
                raise WireError(f"a malformed description of {name!r}")
            if description[0] == "module":
                imported = self._stdlib_module(description[1:])
                if imported is not None:
                    setattr(module, name, imported)
            elif description[0] == "class":
                setattr(module, name, self._class(description))
            elif description[0] == "value" and len(description) == 2:
                setattr(module, name, self.codec.decode(description[1]))
            else:
                raise WireError(f"a malformed description of {name!r}")
        return module

    def _stdlib_module(self, rest: list[Any]) -> types.ModuleType | None:
        import importlib

        name = rest[0] if len(rest) == 1 and type(rest[0]) is str else ""
        top = name.partition(".")[0]
        if top not in getattr(sys, "stdlib_module_names", ()) or top in _HIDDEN_MODULES:
            return None
        try:
            return importlib.import_module(name)
        except Exception:
            return None

    def _class(self, description: list[Any]) -> type:
        if len(description) != 5 or type(description[1]) is not int or type(description[2]) is not str:
            raise WireError("a malformed class description")
        _, number, name, bases_raw, builtin_name = description
        if number in self.classes:
            return self.classes[number]
        if not name.isidentifier() or type(bases_raw) is not list:
            raise WireError("a malformed class description")
        bases = [self._class(base) for base in bases_raw]
        builtin = getattr(builtins, builtin_name, None) if type(builtin_name) is str else None
        cls: type
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            # A mirror exception: `pytest.raises(solution.MyError)` needs a real class here.
            exception_bases = [b for b in bases if issubclass(b, Exception)]
            fallback = builtin if issubclass(builtin, Exception) else Exception
            if not any(issubclass(b, fallback) for b in exception_bases):
                exception_bases.append(fallback)
            namespace = {"__module__": "solution", "__qualname__": name, "__str__": _mirror_str}
            try:
                cls = type(name, tuple(exception_bases), namespace)
            except TypeError:
                cls = type(name, (Exception,), namespace)
        else:
            proxy_bases = tuple(b for b in bases if issubclass(b, RemoteObject)) or (RemoteObject,)
            namespace = {"__module__": "solution", "__qualname__": name, "__slots__": ()}
            try:
                cls = RemoteClass(name, proxy_bases, namespace)
            except TypeError:
                cls = RemoteClass(name, (RemoteObject,), namespace)
        type.__setattr__(cls, "_llmgate_class_number", number)
        type.__setattr__(cls, "_llmgate_class_peer", self)
        self.classes[number] = cls
        return cls

    # requests

    def call(self, number: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        encoded_args = [self.codec.encode(item) for item in args]
        encoded_kwargs = [[key, self.codec.encode(value)] for key, value in kwargs.items()]
        result, back = self._exchange(
            "call", {"op": "call", "h": number, "args": encoded_args, "kwargs": encoded_kwargs}
        )
        for key, encoded in back:
            original = args[key] if type(key) is int and 0 <= key < len(args) else kwargs.get(str(key))
            _sync(original, self.codec.decode(encoded))
        return result

    def request(self, op: str, **fields: Any) -> Any:
        return self._exchange(op, {"op": op, **fields})[0]

    def _exchange(self, op: str, message: dict[str, Any]) -> tuple[Any, list[Any]]:
        if self.broken is not None:
            raise SolutionBroken(self.broken)
        try:
            self.channel.send(message)
            while True:
                reply = self.channel.receive()
                self._notes(reply)
                if reply.get("op") == "callback":
                    self._run_callback(reply)
                    continue
                if "ok" in reply:
                    back = reply.get("back", [])
                    if type(back) is not list or any(type(b) is not list or len(b) != 2 for b in back):
                        raise WireError("a malformed copy of the arguments")
                    return self.codec.decode(reply["ok"]), back
                if type(reply.get("raise")) is dict:
                    raise self._exception(reply["raise"], op)
                raise WireError("a reply with neither a value nor an exception")
        except PeerGone as exc:
            self.broken = "ended"
            raise SolutionBroken("the code ended its process") from exc
        except WireError as exc:
            self.broken = f"sent {exc}"
            raise SolutionBroken(f"the code sent {exc}") from exc

    def _notes(self, reply: dict[str, Any]) -> None:
        for key in ("blocked", "noticed"):
            notes = reply.get(key)
            if type(notes) is list:
                self.forward(key, [_clip(str(note), 200) for note in notes[:MAX_NOTES]])

    def _exception(self, info: dict[str, Any], op: str) -> BaseException:
        name = str(info["name"]) if type(info.get("name")) is str else "Exception"
        base = getattr(builtins, str(info.get("base")), None)
        if isinstance(base, type) and issubclass(base, BaseException) and not issubclass(base, Exception):
            self.untrusted = self.untrusted or (
                f"{name}: the code raised {name} to stop the runner; it only ends the call in the "
                "code's own process, and counts as an attempt to cheat"
            )
        if not (isinstance(base, type) and issubclass(base, Exception)):
            base = RuntimeError  # SystemExit, KeyboardInterrupt, ... never leave the code's process
        text = info.get("text")
        if base in (StopIteration, StopAsyncIteration) and op != "next":
            # Else `all(map(check, xs))` would end early and pass.
            base, text = RuntimeError, f"the code raised {name} outside of iteration"
            name = "RuntimeError"
        number = info.get("class")
        cls: type[BaseException] = base
        mirror = self.classes.get(number) if type(number) is int else None
        if mirror is not None and issubclass(mirror, Exception):
            cls = mirror
        elif name != base.__name__ and name.isidentifier():
            cls = self._named_subclass(name, str(info.get("module", "")), base)
        args = self.codec.decode(info.get("args", ["t", []]))
        args = args if type(args) is tuple else ()
        exc: BaseException
        try:
            exc = cls.__new__(cls, *args)
            exc.args = args
        except Exception:
            exc = RuntimeError(*args)
        for attribute in info.get("attributes", [])[:20]:
            if type(attribute) is list and len(attribute) == 2 and type(attribute[0]) is str:
                try:
                    setattr(exc, attribute[0], self.codec.decode(attribute[1]))
                except (AttributeError, TypeError):
                    pass
        where = info.get("where")
        if base is RuntimeError and name == "RuntimeError" and not args and type(text) is str:
            exc.args = (text,)
        if type(text) is str and cls.__module__ in ("solution", "remote"):
            exc.__dict__["_llmgate_text"] = _clip(text)
        if type(where) is str and where:
            exc.__dict__["_llmgate_where"] = _clip(where, 100)
        return exc

    def _named_subclass(self, name: str, module: str, base: type[Exception]) -> type[BaseException]:
        """The code's exception class by name: the stdlib's own class when the tests imported its
        module (json.JSONDecodeError), else a subclass of its builtin base under its name."""
        known = sys.modules.get(module) if module not in ("solution", "__main__") else None
        cls = getattr(known, name, None) if known is not None else None
        if isinstance(cls, type) and issubclass(cls, base):
            return cls
        key = (name, module, base)
        if key not in self._subclasses:
            namespace = {"__module__": "remote", "__qualname__": name, "__str__": _mirror_str}
            self._subclasses[key] = type(name, (base,), namespace)
        return self._subclasses[key]

    def _run_callback(self, message: dict[str, Any]) -> None:
        number = message.get("fn")
        if type(number) is not int or not 0 <= number < len(self.callbacks):
            raise WireError("a callback to an unknown function")
        raw_args, raw_kwargs = message.get("args"), message.get("kwargs")
        if type(raw_args) is not list or type(raw_kwargs) is not list:
            raise WireError("a malformed callback")
        args = [self.codec.decode(item) for item in raw_args]
        kwargs = {str(pair[0]): self.codec.decode(pair[1]) for pair in raw_kwargs}
        try:
            reply: dict[str, Any] = {"ok": self.codec.encode(self.callbacks[number](*args, **kwargs))}
        except Exception as exc:
            base = next((k for k in type(exc).__mro__ if getattr(builtins, k.__name__, None) is k), Exception)
            reply = {"raise": {"base": base.__name__, "text": _clip(str(exc))}}
        self.channel.send(reply)


def _sync(original: Any, copy: Any) -> None:
    """Write back what the code did to a mutable argument, in place, so `sort_in_place(xs)` works."""
    if type(original) is not type(copy):
        return
    if type(original) is list:
        if len(original) == len(copy):
            for index, item in enumerate(copy):
                if type(original[index]) in _MUTABLE and type(item) is type(original[index]):
                    _sync(original[index], item)
                else:
                    original[index] = item
        else:
            original[:] = copy
    elif type(original) is dict:
        original.clear()
        original.update(copy)
    elif type(original) is set:
        original.clear()
        original.update(copy)
    elif type(original) is bytearray:
        original[:] = copy


def _pytest_shim() -> types.ModuleType:
    """A stand-in `pytest` module for tests written pytest-style: raises, approx and fail."""
    import math
    import re

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
            if isinstance(actual, RemoteObject):
                raise actual._refuse("compared with pytest.approx")
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


def _make_undumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): a process of the same user (the code's, when pytest is not root)
    can then neither ptrace this one nor open its /proc files. Done before the audit hook exists."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def tests_main(argv: Sequence[str]) -> int:
    """The tests process: guard, wait for the code, run every test, report each on its own pipe."""
    workdir, parent_netns = argv[2], argv[3]
    channel = Channel(int(argv[4]), int(argv[5]))
    events = os.fdopen(int(argv[6]), "w", encoding="utf-8")

    def emit(**event: Any) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    undumpable = _make_undumpable()
    payload = _read_payload()
    tests, names = str(payload.get("tests", "")), [str(name) for name in payload.get("names", [])]
    own_netns = _netns_id()
    _prime_linecache(TESTS_NAME, tests)
    readable = [os.path.realpath(entry) for entry in sys.path if entry]
    os.environ["TMPDIR"] = workdir
    sys.modules["pytest"] = _pytest_shim()

    def report(what: str) -> None:
        emit(event="blocked", what=what, by="tests")

    sys.addaudithook(make_audit_hook(workdir, readable, report))
    emit(
        event="started",
        netns=bool(parent_netns and own_netns and own_netns != parent_netns),
        uid=os.getuid(),
        undumpable=undumpable,
    )

    def forward(kind: str, notes: list[str]) -> None:
        for note in notes:
            emit(event=kind, what=note, by="code")

    peer = Peer(channel, forward)
    try:
        ready = channel.receive()
        peer._notes(ready)
    except (PeerGone, WireError) as exc:
        emit(event="broken", test=None, why="ended" if isinstance(exc, PeerGone) else f"sent {exc}")
        return _done(emit, channel)
    emit(
        event="solution",
        uid=ready.get("uid") if type(ready.get("uid")) is int else None,
        netns=ready.get("netns") is True,
        drop_error=_clip(str(ready.get("drop_error") or ""), 200),
    )
    if ready.get("op") == "setup_error":
        emit(event="setup_error", error=_clip(str(ready.get("error", ""))))
        return _done(emit, channel)
    try:
        module = peer.build_module(ready.get("names"))
    except (WireError, RecursionError) as exc:
        emit(event="broken", test=None, why=f"sent {exc}")
        return _done(emit, channel)
    sys.modules["solution"] = module
    namespace = dict(vars(module))
    namespace["__name__"] = "test_solution"
    try:
        exec(compile(tests, TESTS_NAME, "exec"), namespace)
    except BaseException as exc:
        if peer.broken is not None:
            emit(event="broken", test=None, why=peer.broken)
        else:
            emit(event="setup_error", error=f"the tests raised {describe_exception(exc)} at import")
        return _done(emit, channel)
    for name in names:
        if peer.broken is not None:
            emit(event="failed", test=name, error="not run: the code's process had ended", kind="skipped")
            continue
        emit(event="running", test=name)
        peer.untrusted = None
        try:
            namespace[name]()
            error = None
        except BaseException as exc:
            error = describe_exception(exc)
        if peer.broken is not None:
            emit(event="broken", test=name, why=peer.broken)
            emit(event="failed", test=name, error="the code broke the runner", kind="broken")
        elif peer.untrusted is not None:
            emit(event="failed", test=name, error=peer.untrusted, kind="untrusted")
        elif error is not None:
            emit(event="failed", test=name, error=error)
        else:
            emit(event="passed", test=name)
    return _done(emit, channel)


def _done(emit: Callable[..., None], channel: Channel) -> int:
    emit(event="done")
    try:
        channel.send({"op": "bye"})
    except (PeerGone, WireError, OSError):
        pass
    _finish()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["solution"]:
        solution_main(sys.argv)
    else:
        tests_main(sys.argv)
