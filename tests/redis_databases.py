"""Redis databases of one test or benchmark run, claimed on the local Redis so that two runs
on one machine never share one.

A run claims a database for a role the first time it needs one, with a lock key per
database (in database 0, `switchboard-tests:db:<n>`) that expires on its own should the
run die, and lets go of them all when the process exits. When every database is taken,
it waits for one. Database 0 itself is never handed out.
"""

from __future__ import annotations

import atexit
import os
import secrets
import time

import redis

HOST = os.environ.get("SWITCHBOARD_TEST_REDIS_HOST", "127.0.0.1")
PORT = int(os.environ.get("SWITCHBOARD_TEST_REDIS_PORT", "6379"))
#: What a run uses a database for: in-process tests (each flushes it), the shared stack's
#: data and Celery queues, and those of stacks a test starts for itself.
ROLES = ("app", "stack", "stack_broker", "own", "own_broker")
#: A claim outlives any run; it is let go at exit, and runs out should the run be killed.
_CLAIM_SECONDS = 2 * 3600
#: How long a run waits for a database another run holds.
_WAIT_SECONDS = 600.0
_LOCK = "switchboard-tests:db:{}"


class NoFreeDatabases(RuntimeError):
    pass


_token = secrets.token_hex(8)
_claimed: dict[str, int] = {}


def url(db: int) -> str:
    return f"redis://{HOST}:{PORT}/{db}"


def db(role: str) -> int:
    """The database this run uses for `role` (one of ROLES), claimed on first use."""
    assert role in ROLES, role
    if role not in _claimed:
        if not _claimed:
            atexit.register(_release)
        _claimed[role] = _claim_one()
    return _claimed[role]


def _admin() -> redis.Redis[bytes]:
    return redis.Redis(host=HOST, port=PORT, db=0, socket_connect_timeout=2)


def _claim_one() -> int:
    client = _admin()
    count = int(client.config_get("databases").get("databases") or 16)
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        for number in range(count - 1, 0, -1):
            if client.set(_LOCK.format(number), _token, nx=True, ex=_CLAIM_SECONDS):
                return number
        if time.monotonic() > deadline:
            raise NoFreeDatabases(
                f"every Redis database on {HOST}:{PORT} has been held by other test runs "
                f"for {_WAIT_SECONDS:g} s"
            )
        time.sleep(0.5)


def _release() -> None:
    try:
        client = _admin()
        for number in _claimed.values():
            if client.get(_LOCK.format(number)) == _token.encode():
                client.delete(_LOCK.format(number))
    except redis.RedisError:
        pass  # the claims run out by themselves
