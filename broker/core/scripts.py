"""The Lua scripts in `broker/lua/`, loaded once and called by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from broker.core.connection import Redis

# Builds Script objects only; it never connects. Scripts run on the client given to them.
_builder = redis.Redis()
_NAMES = (
    "attempt_record",
    "claim_due",
    "endpoint_gate",
    "endpoint_outcome",
    "ingress",
    "lock_extend",
    "lock_release",
    "queue_release",
    "rate_limit",
    "replay",
    "signal",
    "turn_commit",
    "turn_finish",
)


@cache
def _script(name: str) -> Script:
    source = resources.files("broker").joinpath("lua", f"{name}.lua").read_text()
    return _builder.register_script(source)


def run(client: Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    """Run script `name` (EVALSHA, loading it when Redis lacks it)."""
    return _script(name)(keys=keys, args=args, client=client)


def add(pipe: Pipeline, name: str, keys: list[str], args: list[Any]) -> None:
    """Queue script `name` on a pipeline that `execute` will send."""
    pipe.evalsha(_script(name).sha, len(keys), *keys, *args)


def execute(r: Redis, build: Callable[[Pipeline], None]) -> list[Any]:
    """Send the commands `build` puts on a pipeline, in one round trip.

    If Redis lost its script cache (a restart), the scripts are loaded and the
    pipeline sent again, so `build` must queue commands that are safe to repeat
    when the script in them did not run.
    """
    for _ in range(2):
        pipe = r.pipeline(transaction=False)
        build(pipe)
        try:
            return pipe.execute()  # type: ignore[no-any-return]
        except NoScriptError:
            for name in _NAMES:
                r.script_load(_script(name).script)
    raise NoScriptError("scripts could not be loaded")
