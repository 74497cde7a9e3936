"""The regexes a definition holds (an input's `pattern`, a condition's `matches`), searched
with a time limit.

A regex can take time that grows exponentially with the text (`^(a|aa)+$` on forty `a`s and
a `!`); Python's `re` cannot be stopped and holds the worker's interpreter while it runs. The
`regex` module takes a timeout: a search past PATTERN_SECONDS raises PatternTooSlow, and the
turn fails as any other that raises (its message ends as a dead letter of turns, with an
error that names the regex). Validation compiles with the same module, so what it accepts is
what runs.
"""

from __future__ import annotations

import regex

#: Seconds one search of one of a definition's regexes may take.
PATTERN_SECONDS = 0.1

error = regex.error


class PatternTooSlow(Exception):
    """A definition's regex took longer than PATTERN_SECONDS on a text."""


def check(pattern: str) -> None:
    """Raises `error` when `pattern` is not a regex."""
    regex.compile(pattern)


def search(pattern: str, text: str, *, where: str) -> bool:
    """Whether `pattern` matches somewhere in `text`; `where` names the regex in the error."""
    try:
        return regex.search(pattern, text, timeout=PATTERN_SECONDS) is not None
    except TimeoutError:
        raise PatternTooSlow(
            f"the regex {pattern!r} of {where} took more than {PATTERN_SECONDS} s "
            f"on a text of {len(text)} characters"
        ) from None
