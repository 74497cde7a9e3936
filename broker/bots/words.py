"""What the understanding works on: text folded to words, and how far apart two words are."""

from __future__ import annotations

import re
import unicodedata

_NOT_A_WORD = re.compile(r"[^0-9a-z@]+")
_APOSTROPHES = re.compile(r"['\u2019]")
#: A longer word is taken only as it is: no word is that long, and its typos would cost time
#: and memory that grow with its length cubed (`deletions`).
TYPO_MAX_LETTERS = 30


def fold(text: str) -> str:
    """Lower case, without accents or punctuation, words one space apart: "Crème-brûlée!" ->
    "creme brulee"; "I'd" -> "id"."""
    decomposed = unicodedata.normalize("NFKD", _APOSTROPHES.sub("", text.casefold()))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_A_WORD.sub(" ", bare.replace("ß", "ss")).strip()


def words(text: str) -> list[str]:
    return fold(text).split()


def distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`."""
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i, *([0] * len(b))]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def typo_budget(word: str) -> int:
    """How many edits a word of this length may carry and still be recognised."""
    if len(word) > TYPO_MAX_LETTERS:
        return 0
    if len(word) >= 8:
        return 2
    return 1 if len(word) >= 4 else 0


def deletions(word: str, depth: int) -> set[str]:
    """The word with up to `depth` letters left out (the word itself included)."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found
