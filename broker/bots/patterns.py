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


def search(pattern: str, text: str, *, where: str) -> bool:
    """Whether `pattern` matches somewhere in `text`; `where` names the regex in the error."""
    try:
        return regex.search(pattern, text, timeout=PATTERN_SECONDS) is not None
    except TimeoutError:
        raise PatternTooSlow(
            f"the regex {pattern!r} of {where} took more than {PATTERN_SECONDS} s "
            f"on a text of {len(text)} characters"
        ) from None
