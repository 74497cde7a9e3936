"""The benchmarks run end to end on a small load (the figures themselves are not checked)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.prerequisites import require_redis


@pytest.mark.parametrize(
    ("args", "figure"),
    [
        (["bench.delivery_throughput", "--deliveries", "40", "--conversations", "4"], "/s"),
        (["bench.ingress_throughput", "--seconds", "0.5", "--clients", "2"], "/s"),
        (["bench.redis_calls", "--calls", "50"], '"pipeline_vs_socket"'),
    ],
    ids=["delivery", "ingress", "redis-calls"],
)
def test_a_benchmark_runs_and_prints_its_figures(args: list[str], figure: str) -> None:
    require_redis()
    done = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert figure in done.stdout
