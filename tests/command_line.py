"""Running the `switchboard` command line in tests: in this process, or as a process of its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import pytest

from switchboard.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`switchboard ARGV` in this process: its exit code, what it printed, and its errors."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def switchboard(
    *argv: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m switchboard ARGV` as a process of its own, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
