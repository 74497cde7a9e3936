"""The listings of the operator commands: a table on a terminal, plain lines for scripts."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import click
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from broker.core.escapes import one_line


@dataclass(frozen=True)
class Column:
    header: str
    #: What stands before the value in a plain line, like `attempts=` in `attempts=3`.
    prefix: str = ""


def show(columns: Sequence[Column], rows: Sequence[Sequence[str]], summary: str) -> None:
    """Print the rows, then a summary line.

    On a terminal wide enough, the rows are a table with a row a line. Otherwise each row is
    one line of its values two spaces apart, which scripts split: a narrower table would
    wrap or cut the ids that users copy. The choice follows standard output itself, not
    rich's idea of a terminal, which FORCE_COLOR sways.
    """
    # Values are data: a control character in one must not reach the terminal as such.
    rows = [[printable(value) for value in row] for row in rows]
    if not (sys.stdout.isatty() and _print_table(columns, rows)):
        for row in rows:
            click.echo("  ".join(c.prefix + v for c, v in zip(columns, row, strict=True)))
    click.echo(summary)


def printable(value: str, *, keep_newlines: bool = False) -> str:
    """`value` with its control characters, line breaks and format characters (Unicode's Cf:
    bidi overrides such as U+202E reorder what a terminal shows) written as escapes
    (`escapes.one_line`); `keep_newlines` leaves "\\n" as it is, for text shown on lines of
    its own."""
    if keep_newlines:
        return "\n".join(one_line(line) for line in value.split("\n"))
    return one_line(value)


def _print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> bool:
    """Print the rows as a table if it fits the terminal's width; False if it does not."""
    table = Table(*(c.header for c in columns), box=box.SIMPLE_HEAD, show_edge=False)
    for row in rows:
        table.add_row(*(Text(value) for value in row))  # values are data, never rich markup
    console = Console()
    unbounded = console.options.update_width(sys.maxsize)
    if Measurement.get(console, unbounded, table).maximum > console.width:
        return False
    console.print(table)
    return True
