"""Re-record the example cassettes against the local simulator scripted by simulator.yaml.

    python examples/record_examples.py

The answers are the simulator's (written by hand in simulator.yaml), not OpenAI's. The script
starts the simulator on a free loopback port, runs the example suite in record mode `all`
against it, and stops it; the cassettes under examples/cassettes/ are replaced whole.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_llmgate.simulator import OpenAISimulator

HERE = Path(__file__).resolve().parent


def main() -> int:
    with OpenAISimulator.from_script(HERE / "simulator.yaml") as server:
        env = {**os.environ, "OPENAI_API_KEY": "sk-local-simulator"}
        env.pop("OPENAI_ORG_ID", None)
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(HERE),
            "--llm-candidate=gpt-5.5",
            "--llm-record-mode=all",
            f"--llm-base-url={server.base_url}",
            "-p",
            "no:cacheprovider",
            "-q",
        ]
        status = subprocess.call(command, env=env, cwd=HERE.parent)
    # The suite is meant to show a regression: exit 1 is expected, anything else is not.
    return 0 if status in (0, 1) else status


if __name__ == "__main__":
    raise SystemExit(main())
