"""The bot engine's benchmark runs end to end on a small load (the figures are not checked)."""

from __future__ import annotations

import pytest

from bench import bot_engine


def test_the_bot_engine_benchmark_prints_both_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bot_engine.main(["--seconds", "0.1", "--messages", "50"]) == 0
    engine, matcher = capsys.readouterr().out.splitlines()
    assert engine.startswith("engine: ") and "turns/s" in engine
    assert matcher.startswith("matcher: ") and "per message with 200 intents" in matcher
