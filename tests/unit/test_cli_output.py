"""The command line's output read by another program that stops reading early (`| head`)."""

from __future__ import annotations

import subprocess
import sys

#: A listing longer than a pipe holds, through the wrapper of the commands that work on
#: Redis, whose errors it turns into messages.
_LONG_LISTING = """
import click
from switchboard import cli

@cli.root.command("long-listing")
@cli._on_redis
def long_listing() -> None:
    for n in range(200_000):
        click.echo(f"line {n}")

raise SystemExit(cli.main(["long-listing"]))
"""


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    command = subprocess.Popen(
        [sys.executable, "-c", _LONG_LISTING],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert command.stdout is not None and command.stderr is not None
    assert command.stdout.readline() == b"line 0\n"
    command.stdout.close()
    errors = command.stderr.read().decode()
    assert command.wait(timeout=30) == 1
    assert errors == ""
