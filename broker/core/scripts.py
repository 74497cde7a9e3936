"""The Lua scripts in `broker/lua/`, called by name (EVALSHA; EVAL where Redis lacks one)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.crc import key_slot
from redis.exceptions import NoScriptError

from broker.core.connection import Pipeline, Redis, on_cluster


@dataclass(frozen=True)
class LuaScript:
    source: str
    sha: str


#: A line that stands for a part shared by several scripts, from `broker/lua/lib/`.
_INCLUDE = re.compile(r"^-- include: (\w+)\n", re.MULTILINE)


def _read_all() -> dict[str, LuaScript]:
    folder = resources.files("broker").joinpath("lua")
    found = {}
    for item in folder.iterdir():
        if item.name.endswith(".lua"):
            source = _INCLUDE.sub(
                lambda line: folder.joinpath("lib", f"{line[1]}.lua").read_text(),
                item.read_text(),
            )
            found[item.name.removesuffix(".lua")] = LuaScript(
                source, hashlib.sha1(source.encode()).hexdigest()
            )
    return found


#: Every script, read once at import: a process at its open-files limit still runs them (a
#: worker read a script on its first use, and then could not claim a delivery queue).
_SCRIPTS = _read_all()


def lua(name: str) -> LuaScript:
    return _SCRIPTS[name]


def names() -> tuple[str, ...]:
    """Every script's name."""
    return tuple(sorted(_SCRIPTS))


def slots(keys: Sequence[str]) -> set[int]:
    """The Redis Cluster hash slots of `keys`: one script's keys must all be in one."""
    return {key_slot(key.encode()) for key in keys}


def run(client: Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    """Run script `name`; EVAL loads it where Redis's script cache lacks it."""
    script = lua(name)
    try:
        return client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    except NoScriptError:
        return client.execute_command("EVAL", script.source, len(keys), *keys, *args)


def load_all(r: Redis) -> None:
    """Load every script where Redis lost them (a restart), on every master of a cluster."""
    for name in names():
        r.script_load(lua(name).source)  # type: ignore[no-untyped-call]  # typed in redis-py


def add(pipe: Pipeline, name: str, keys: list[str], args: list[Any]) -> None:
    """Queue script `name` on a pipeline that `execute` will send."""
    # As a plain command: redis-py's cluster pipeline refuses `evalsha()` but routes this
    # (typed in redis-py, not in the stubs).
    command = ("EVALSHA", lua(name).sha, len(keys), *keys, *args)
    pipe.execute_command(*command)  # type: ignore[no-untyped-call]


def execute_in_order(
    r: Redis,
    first: Callable[[Pipeline], None],
    then: Callable[[Pipeline], None],
    *,
    answered: int = 0,
) -> list[Any]:
    """Send what `first` queues, then what `then` queues: in one round trip on a single
    Redis, which runs a pipeline's commands in order; on a Redis Cluster, whose pipeline
    sends each node its part on its own, `then` only once `first` has been taken. For an
    index entry (in another slot) that must exist before a conversation's script runs.
    An error raises, but those of the last `answered` commands, which are answered in their
    places (each stands alone: on a cluster, a node that is down fails its own only)."""
    if on_cluster(r):
        answers = execute(r, first) + execute(r, then, must=0)
    else:

        def both(pipe: Pipeline) -> None:
            first(pipe)
            then(pipe)

        answers = execute(r, both, must=0)
    errors = [a for a in answers[: len(answers) - answered] if isinstance(a, Exception)]
    if errors:
        raise errors[0]
    return answers


def execute(r: Redis, build: Callable[[Pipeline], None], *, must: int | None = None) -> list[Any]:
    """Send the commands `build` puts on a pipeline, in one round trip.

    If Redis lost its script cache (a restart), the scripts are loaded and the
    pipeline sent again, so `build` must queue commands that are safe to repeat
    when the script in them did not run. An error of a command raises; with `must`,
    only one of the first `must` commands: the others' errors are answered in their
    places (what a script did stays done, and its caller must not say it failed).
    """
    for _ in range(2):
        pipe = r.pipeline(transaction=False)
        build(pipe)
        answers = pipe.execute(raise_on_error=False)
        errors = [answer for answer in answers if isinstance(answer, Exception)]
        if any(isinstance(error, NoScriptError) for error in errors):
            load_all(r)
            continue
        checked = answers if must is None else answers[:must]
        fatal = [answer for answer in checked if isinstance(answer, Exception)]
        if fatal:
            raise fatal[0]
        return list(answers)
    raise NoScriptError("scripts could not be loaded")
