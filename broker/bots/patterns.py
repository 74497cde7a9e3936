"""The regexes a definition holds (an input's `pattern`, a condition's `matches`), searched
with a time limit.

A regex can take time that grows exponentially with the text (`^(a|aa)+$` on forty `a`s and
a `!`); Python's `re` cannot be stopped and holds the worker's interpreter while it runs. The
`regex` module takes a timeout: a search past PATTERN_SECONDS raises PatternTooSlow, and the
turn fails as any other that raises (its message ends as a dead letter of turns, with an
error that names the regex). The searches for one message share a budget too
(MESSAGE_PATTERN_SECONDS, `budget`): a chain of conditions could otherwise run search after
search just under the limit of each, for minutes. Validation compiles with the same module,
so what it accepts is what runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import regex

#: Seconds one search of one of a definition's regexes may take.
PATTERN_SECONDS = 0.1
#: Seconds the searches for one message (or one hand-back) may take together.
MESSAGE_PATTERN_SECONDS = 1.0

#: What is left of the running budget, per thread (a turn runs in one thread).
_budget = threading.local()

error = regex.error


class PatternTooSlow(Exception):
    """A definition's regex took longer than PATTERN_SECONDS on a text."""


#: The most copies of its parts a regex's counted repeats may make, multiplied together
#: (`(?:a{100}){100}` makes 10,000): the `regex` module compiles each copy, and
#: `(?:a{100010}){100}` took it seconds and gigabytes, past any time limit of a search.
REPEAT_COPIES = 10_000
_COUNTED = regex.compile(r"(?<!\\)\{(\d+)(?:,(\d*))?\}")


def check(pattern: str) -> None:
    """Raises `error` when `pattern` is not a regex, or one whose counted repeats could make
    more than REPEAT_COPIES copies (counted as if each held the ones after it)."""
    copies = 1
    for low, high in _COUNTED.findall(pattern):
        copies *= max(int(high or low), 1)  # {n} and {n,} make n, {n,m} m
        if copies > REPEAT_COPIES:
            raise error(
                f"its counted repeats ({{n}}, {{n,m}}) make more than {REPEAT_COPIES:,} copies"
            )
    regex.compile(pattern)


@contextmanager
def budget(seconds: float = MESSAGE_PATTERN_SECONDS) -> Iterator[None]:
    """The searches within take `seconds` together at most; inside another budget, that one
    goes on."""
    if getattr(_budget, "left", None) is not None:
        yield
        return
    _budget.left = seconds
    try:
        yield
    finally:
        _budget.left = None


def search(pattern: str, text: str, *, where: str) -> bool:
    """Whether `pattern` matches somewhere in `text`; `where` names the regex in the error."""
    left: float | None = getattr(_budget, "left", None)
    limit = PATTERN_SECONDS if left is None else min(PATTERN_SECONDS, left)
    together = (
        f"the definition's regexes took more than {MESSAGE_PATTERN_SECONDS} s together for "
        f"one message, the last of {where}"
    )
    if limit <= 0:
        raise PatternTooSlow(together)
    started = time.perf_counter()
    try:
        return regex.search(pattern, text, timeout=limit) is not None
    except TimeoutError:
        if limit < PATTERN_SECONDS:
            raise PatternTooSlow(together) from None
        raise PatternTooSlow(
            f"the regex {pattern!r} of {where} took more than {PATTERN_SECONDS} s "
            f"on a text of {len(text)} characters"
        ) from None
    finally:
        if left is not None:
            _budget.left = left - (time.perf_counter() - started)
