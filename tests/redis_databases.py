"""Redis databases of one test or benchmark run, claimed on the local Redis so that two runs
on one machine never share one.

A run claims a block of databases the first time it needs one, with a lock key per
database (in database 0, `switchboard-tests:db:<n>`) that expires on its own should the
run die, and lets go when the process exits. Database 0 itself is never handed out.
"""

from __future__ import annotations

import atexit
import os
import secrets
from dataclasses import dataclass

import redis

HOST = os.environ.get("SWITCHBOARD_TEST_REDIS_HOST", "127.0.0.1")
PORT = int(os.environ.get("SWITCHBOARD_TEST_REDIS_PORT", "6379"))
#: What a run uses a database for: in-process tests of the core and of the web app, the
#: shared stack's data and Celery queues, and those of stacks a test starts for itself.
ROLES = ("core", "web", "stack", "stack_broker", "own", "own_broker")
#: A claim outlives any run; it is let go at exit, and runs out should the run be killed.
_CLAIM_SECONDS = 2 * 3600
_LOCK = "switchboard-tests:db:{}"


class NoFreeDatabases(RuntimeError):
    pass


@dataclass(frozen=True)
class Claim:
    token: str
    numbers: dict[str, int]


_claim: Claim | None = None


def url(db: int) -> str:
    return f"redis://{HOST}:{PORT}/{db}"


def db(role: str) -> int:
    """The database this run uses for `role` (one of ROLES), claimed on first use."""
    global _claim
    if _claim is None:
        _claim = _claim_block(ROLES)
        atexit.register(_release, _claim)
    return _claim.numbers[role]


def _admin() -> redis.Redis[bytes]:
    return redis.Redis(host=HOST, port=PORT, db=0, socket_connect_timeout=2)


def _claim_block(roles: tuple[str, ...]) -> Claim:
    client = _admin()
    count = int(client.config_get("databases").get("databases") or 16)
    token = secrets.token_hex(8)
    numbers: list[int] = []
    for number in range(count - 1, 0, -1):
        if client.set(_LOCK.format(number), token, nx=True, ex=_CLAIM_SECONDS):
            numbers.append(number)
            if len(numbers) == len(roles):
                return Claim(token, dict(zip(roles, sorted(numbers), strict=True)))
    _release(Claim(token, dict(zip(roles, numbers, strict=False))))
    raise NoFreeDatabases(
        f"every Redis database on {HOST}:{PORT} is claimed by another test run; "
        f"this one needs {len(roles)}"
    )


def _release(claim: Claim) -> None:
    try:
        client = _admin()
        for number in claim.numbers.values():
            if client.get(_LOCK.format(number)) == claim.token.encode():
                client.delete(_LOCK.format(number))
    except redis.RedisError:
        pass  # the claims run out by themselves
