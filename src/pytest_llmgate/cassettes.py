"""Where cassettes live and what reading one can go wrong: the parts replay and recording share.

No vcrpy, openai or httpx2 here, so that a replay-only run never imports them.

A cassette can come from an untrusted pull request, so reading one is defensive: no YAML aliases
(an alias bomb costs gigabytes), no non-finite or negative recorded numbers (a `nan` latency
passes every budget), no symlink out of the project. Writing one goes through a temporary file
named after the writing process, so the next run can remove what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from pytest_llmgate.ratelimits import RateLimit

LATENCY_HEADER = "x-llmgate-latency-ms"
"""Response header under which a recording keeps the latency measured when it was made."""
TTFT_HEADER = "x-llmgate-ttft-ms"
"""Likewise for a streamed answer: the time from sending the request to its first content."""
TOKEN_COUNTS_KEY = "llmgate_prompt_tokens"
"""Cassette metadata (vcrpy's `metadata:`) under which a recording keeps the local (tiktoken)
prompt-token counts of its request, by `drift.count_key`: a replay reads them instead of loading a
vocabulary."""
MAX_KEPT_COUNT = 10**9


def model_file_name(model: str) -> str:
    """A file name for a model id: `meta-llama/Llama-3:8b` -> `meta-llama__Llama-3_8b`."""
    name = model.replace("/", "__")
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def cassette_path(cassette_dir: Path, file_stem: str, case_id: str, model: str) -> Path:
    """`<dir>/<file stem>/<case id>/<model>.yaml`: one cassette per case and model."""
    return cassette_dir / file_stem / case_id / f"{model_file_name(model)}.yaml"


class CorruptCassetteError(Exception):
    def __init__(self, path: Path, detail: str) -> None:
        detail = " ".join(detail.split())
        super().__init__(
            f"cassette {display_path(path)} cannot be read ({detail}); delete it and record it again "
            "with --llm-record-mode=once"
        )
        self.path = path


class UnsafeCassettePath(Exception):
    """A cassette (or a folder on its way) is a symlink leading out of the project."""

    def __init__(self, path: Path, target: Path, boundary: Path) -> None:
        super().__init__(
            f"cassette {display_path(path)} leads through a symlink to {target}, outside {boundary}: "
            "refusing to read or write it (a recording from a pull request must not reach other "
            "files); replace the link with a real folder or file"
        )
        self.path = path


class RecordingMissing(Exception):
    """A request has no recording and the record mode forbids making one."""

    def __init__(self, path: Path, reason: str, detail: str = "") -> None:
        self.path = path
        self.reason = reason  # "missing" | "stale" | "exhausted"
        self.detail = detail
        super().__init__(f"{reason} recording {path}: {detail}")


@dataclass
class Exchange:
    """One HTTP round trip made (or replayed) for a model call."""

    status: int
    latency_ms: float
    replayed: bool
    ttft_ms: float | None = None  # streamed answers: time to the first content or tool-call delta
    rate_limit: RateLimit | None = None  # what the answer's rate-limit headers said, if anything


def unplayed_note(path: Path, unplayed: int, recorded: int) -> str:
    """The note for a cassette whose recorded answers were not all replayed (fewer samples)."""
    # Path and counts first: the terminal summary clips each note to one line.
    return (
        f"replay: {display_path(path)}: {unplayed} of {recorded} recorded answers not replayed "
        f"(recorded with --llm-repeat {recorded}?); re-record with --llm-record-mode=all or pass "
        "the same --llm-repeat"
    )


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it can be, as people type it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _NoAliasLoader(yaml.SafeLoader):
    """The pure-Python safe loader, refusing aliases as it composes (libyaml's composer is C)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(
                problem=f"YAML alias *{event.anchor} (a cassette never needs one; an alias bomb "
                "expands to gigabytes)",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


def dump_cassette_text(data: Mapping[str, Any]) -> str:
    """The cassette as JSON text: valid YAML (YAML is a superset of JSON), read back 15x faster.

    A 2,000-case replay spent a third of its time building libyaml's objects for 4,000
    cassettes; `json.loads` of the same data costs a fifteenth of that. Characters YAML may not
    hold unescaped, or reads as line breaks (C1 controls, U+2028/2029, lone surrogates,
    U+FFFE/FFFF), are written as `\\u` escapes, so any YAML reader still reads the file.
    Raises TypeError or ValueError for what JSON cannot hold (undecodable bytes, a nan), which
    the caller writes as YAML instead.
    """
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return _NOT_YAML_PRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text) + "\n"


# Not printable in YAML, or read as a line break inside a scalar (NEL, LS, PS).
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _parse(text: str) -> Any:
    """JSON first (how cassettes are written now), YAML for anything else (older cassettes).

    JSON has no aliases, so only the YAML path needs the alias guard: text without `&` cannot
    define an anchor, so it cannot hold an alias either and goes to libyaml's fast loader.
    """
    if text.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            return json.loads(text)
    loader = _NoAliasLoader if "&" in text else _SafeLoader
    return yaml.load(text, Loader=loader)


def load_cassette_data(text: str, path: Path) -> dict[str, Any]:
    """The cassette's data, checked: no YAML aliases, `interactions` a list, every recorded
    latency and token count a finite number >= 0. CorruptCassetteError otherwise.
    """
    try:
        data = _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise CorruptCassetteError(path, f"{where}{exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise CorruptCassetteError(path, f"{type(exc).__name__}: {exc}") from exc
    except RecursionError:
        raise CorruptCassetteError(path, "YAML nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise CorruptCassetteError(path, "no 'interactions' list")
    for index, item in enumerate(data["interactions"]):
        response = item.get("response") if isinstance(item, dict) else None
        if not isinstance(response, dict):
            raise CorruptCassetteError(path, f"interaction {index + 1} has no response")
        check_recorded_numbers(path, index, response)
    kept_token_counts(path, data)  # checked here, so every reader sees only sound counts
    return data


def kept_token_counts(path: Path, data: Mapping[str, Any]) -> dict[str, int]:
    """The local prompt-token counts a cassette keeps (`TOKEN_COUNTS_KEY`), by key.

    Anything but a mapping of text keys to whole numbers from 0 to 10^9 makes the cassette
    corrupt. A plausible edited count cannot be told from a real one, no more than an edited
    `usage.prompt_tokens` can; gate[drift] decides on the API's recorded counts where both models
    have them, and on these local counts only where they do not.
    """
    metadata = data.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise CorruptCassetteError(path, f"metadata is {type(metadata).__name__}, not a mapping")
    counts = metadata.get(TOKEN_COUNTS_KEY)
    if counts is None:
        return {}
    if not isinstance(counts, Mapping):
        raise CorruptCassetteError(path, f"metadata {TOKEN_COUNTS_KEY} is not a mapping")
    for key, value in counts.items():
        if not isinstance(key, str) or type(value) is not int or not 0 <= value <= MAX_KEPT_COUNT:
            raise CorruptCassetteError(
                path, f"metadata {TOKEN_COUNTS_KEY}[{key!r}] is {value!r}, not a whole number from 0 to 10^9"
            )
    return dict(counts)


def check_recorded_numbers(path: Path, index: int, response: Mapping[str, Any]) -> None:
    """A recorded latency or token count that is not a finite number >= 0 makes the cassette corrupt.

    A `nan` latency compares false with every limit, so it would pass each latency budget and the
    latency gate; a negative token count would lower the cost. Both can only come from an edited
    file, so the cassette is refused with the interaction and the field.
    """
    where = f"interaction {index + 1}"
    headers = response.get("headers") or {}
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if str(name).lower() in (LATENCY_HEADER, TTFT_HEADER):
                recorded_latency(path, where, value, str(name).lower())
    body = response.get("body")
    content = body.get("string") if isinstance(body, Mapping) else None
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    if isinstance(content, str) and '"usage"' in content:
        for usage in _usages(content):
            _check_counts(path, where, "usage", usage)


def recorded_latency(path: Path, where: str, value: Any, header: str = LATENCY_HEADER) -> float:
    """The latency a header recorded, in ms; CorruptCassetteError unless finite and >= 0."""
    text = value[0] if isinstance(value, list) and value else value
    try:
        latency = float(str(text))
    except ValueError:
        latency = math.nan
    if not math.isfinite(latency) or latency < 0:
        raise CorruptCassetteError(
            path, f"{where}: recorded latency {header}: {text!r} is not a finite number >= 0"
        )
    return latency


def _usages(content: str) -> Iterable[Any]:
    """The `usage` objects of a JSON body or of the events of a streamed (SSE) one."""
    try:
        documents = [json.loads(content)]
    except ValueError:
        documents = []
        for line in content.splitlines():
            if line.startswith("data:") and '"usage"' in line:
                with contextlib.suppress(ValueError):
                    documents.append(json.loads(line[5:]))
    return [document["usage"] for document in documents if isinstance(document, dict) and "usage" in document]


def _check_counts(path: Path, where: str, field: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_counts(path, where, f"{field}.{key}", item)
    elif isinstance(value, float | int) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise CorruptCassetteError(
                path, f"{where}: recorded {field} is {value!r}, not a finite number >= 0"
            )


def check_cassette_path(path: Path, root: Path, project: Path) -> None:
    """UnsafeCassettePath when `path` resolves (through symlinks) outside where cassettes may live.

    That is the project (`project`, the pytest rootdir) when the cassette folder `root` is in it,
    else `root` itself (an explicit `--llm-cassette-dir` elsewhere is the user's choice; links
    below it still may not leave it).
    """
    absolute_root = os.path.abspath(root)
    boundary = _boundary(absolute_root, os.path.abspath(project))
    target = Path(_resolve_below(os.path.abspath(path), absolute_root))
    if not target.is_relative_to(boundary):
        raise UnsafeCassettePath(path, target, boundary)


def _resolve_below(path: str, root: str) -> str:
    """`os.path.realpath(path)`, with the part above `root` resolved once per root.

    A replay checks thousands of cassettes under one folder; resolving each whole path walked
    every folder from `/` again (a tenth of a 2,000-case replay). Below the root, a component
    that is not a symlink resolves to itself, so `lstat` of those few is enough; a symlink there
    (or a path not under `root`) takes the full `realpath`.
    """
    prefix = root.rstrip(os.sep) + os.sep
    if not path.startswith(prefix):
        return os.path.realpath(path)
    parts = path[len(prefix) :].split(os.sep)
    if any(part in ("", ".", "..") for part in parts):
        return os.path.realpath(path)
    current = root
    for part in parts:
        current = os.path.join(current, part)
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return os.path.realpath(path)
        except OSError:
            break  # what does not exist is no link: realpath keeps the rest as written
    return os.path.join(_realpath(root), *parts)


@functools.lru_cache(maxsize=64)
def _realpath(path: str) -> str:
    return os.path.realpath(path)


@functools.lru_cache(maxsize=64)
def _boundary(absolute_root: str, absolute_project: str) -> Path:
    """Resolved once per cassette folder and project, not for each of thousands of cassettes."""
    inside = os.path.commonpath([absolute_root, absolute_project]) == absolute_project
    return Path(os.path.realpath(absolute_project if inside else absolute_root))


TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def create_temp_beside(path: Path) -> tuple[int, str]:
    """An open descriptor and the name of a new temporary file in `path`'s folder.

    Created with mode 0666 less the umask, as any file the user makes (mkstemp's 0600 would stay
    on the renamed cassette or report). The name carries our pid, so a later run can tell a
    temporary file of a killed run (`remove_stale_temps`) from one a live worker is writing.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = os.path.join(path.parent, f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{TEMP_SUFFIX}")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue


def remove_stale_temps(folder: Path, started: float | None = None) -> list[str]:
    """Delete the temporary files a killed run (SIGTERM, SIGKILL, power cut) left in `folder`.

    Only files named by `create_temp_beside` are touched, and only when the process that made
    them is gone; files of an older naming (`.name.random.tmp`, no pid) when they predate
    `started`. Returns the names removed.
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(".") or not name.endswith(TEMP_SUFFIX):
            continue
        match = _TEMP_NAME.match(name)
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if match is not None:
                if _alive(int(match.group("pid"))):
                    continue
            elif started is None or entry.stat(follow_symlinks=False).st_mtime >= started:
                continue
            os.unlink(entry.path)
            removed.append(name)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or a number no pid can be: leave the file alone
    return True


LOCK_STRIPES = 4096
"""Lock files per user: a cassette takes the one its path hashes to. Enough that the calls in
flight (16 a worker) rarely share one; few enough that the folder stays small."""


@contextlib.contextmanager
def cassette_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for the cassette at `path` across processes (xdist workers).

    Two workers may run the same recording: with several candidates, the baseline of one case
    serves candidate items that xdist sends to different workers. Held from loading the cassette
    to saving it, the second worker finds the first one's recording and replays it instead of
    calling (and billing) the model again. A lock file per stripe in the user's temporary folder,
    never beside the cassettes (they are committed). No-op where `fcntl` is missing (Windows).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(tempfile.gettempdir()) / f"llmgate-locks-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    stripe = int(hashlib.sha1(os.fsencode(os.path.abspath(path))).hexdigest(), 16) % LOCK_STRIPES
    handle = os.open(folder / f"{stripe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock
