"""Which redis-server the embedded Redis runs on data that a Redis 7 wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.core.errors import ConfigError, SwitchboardError
from switchboard import embedded_redis


def _fake_server(folder: Path, version: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "redis-server"
    script.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=00000000:0 bits=64'\n")
    script.chmod(0o755)
    return str(script)


def test_the_version_is_read_from_the_binary(tmp_path: Path) -> None:
    assert embedded_redis.major_version(_fake_server(tmp_path / "6", "6.2.14")) == 6
    assert embedded_redis.major_version(str(tmp_path / "missing")) == 0


def test_data_of_redis_7_goes_to_a_redis_7_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = _fake_server(tmp_path / "bundled", "6.2.14")
    newer = _fake_server(tmp_path / "path", "7.0.15")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bundled'}:{tmp_path / 'path'}")
    (tmp_path / "data" / "appendonlydir").mkdir(parents=True)
    assert embedded_redis._written_by_redis_7(tmp_path / "data")
    binary, origin = embedded_redis._redis_7_for(older, tmp_path / "data")
    assert binary == newer and "Redis 7" in origin


def test_without_a_redis_7_it_refuses_rather_than_start_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = _fake_server(tmp_path / "bundled", "6.2.14")
    monkeypatch.setenv("PATH", str(tmp_path / "bundled"))
    with pytest.raises(ConfigError, match="SWITCHBOARD_REDIS_SERVER"):
        embedded_redis._redis_7_for(older, tmp_path / "data")


def test_a_binary_that_cannot_be_run_is_named(tmp_path: Path) -> None:
    server = embedded_redis.EmbeddedRedis(tmp_path, binary=str(tmp_path / "no-redis-here"))
    with pytest.raises(SwitchboardError) as refused:
        server.start()
    assert refused.value.message == (
        f"the embedded Redis could not be started: {tmp_path / 'no-redis-here'}: No such file "
        "or directory (SWITCHBOARD_REDIS_SERVER names the redis-server to run)"
    )


def test_a_start_that_fails_is_told_by_what_it_wrote_not_by_an_earlier_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "redis.log").write_text("1:M 01 Dec 2026 10:00:00.000 # ready to exit, bye bye\n")
    server = embedded_redis.EmbeddedRedis(tmp_path, binary="/bin/false")
    with pytest.raises(SwitchboardError) as refused:
        server.start()
    assert "bye bye" not in refused.value.message
    assert refused.value.message.endswith(f"wrote nothing to its log {tmp_path / 'redis.log'}")
