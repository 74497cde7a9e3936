"""Intent matching: which intent a user's text means, with a confidence from 0 to 1.

Pure Python, with no model to download. Text and examples are folded (case, accents,
punctuation: `words.fold`) into words; a word the examples do not have is taken for the
closest one that they do within a small typo budget (one edit for four letters or more, two
for eight or more), found through an index of deletions rather than a scan of the
vocabulary. Each example is scored by how much of the user's text it explains (precision)
and how much of it the text covers (recall), both weighted by how telling each word is (its
inverse frequency over the intents), and combined with precision counting more (an F-beta, beta
squared 0.5): a short message that one example explains fully scores high even though the
example says more. Word order does not count. Words no example has lower the confidence a little. An
intent's confidence is that of its best example.

An example may name an entity as `{name}`: any value or synonym of that entity in the text
then matches it, so "a {pizza} please" covers every pizza the entity lists.

Why not a library: see docs/bot-definitions.md ("Understanding"), which gives the
measurement against rapidfuzz behind the choice.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from broker.bots.words import deletions, distance, fold, typo_budget

#: How much an unknown word of the user's weighs, against 1 + ln(N/df) for known ones.
_UNSEEN_WEIGHT = 1.0
#: The square of the F-beta's beta: below 1, precision counts more than recall.
_BETA_SQUARED = 0.5
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z0-9_.\-]+)\s*\}")
#: Lookups of user words kept per matcher; past this the memo starts over.
_MEMO_SIZE = 20_000


@dataclass(frozen=True)
class Match:
    intent: str
    confidence: float


@dataclass(frozen=True)
class _Example:
    intent: str
    words: frozenset[str]
    weight: float


class Matcher:
    """Built once per bot definition; `rank` and `best` are safe to call from many threads."""

    def __init__(
        self,
        intents: Mapping[str, Sequence[str]],
        classes: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """`intents`: each intent's example expressions; `classes`: for each entity, its values
        and synonyms (an example's `{entity}` matches any of them)."""
        self._classes: dict[str, set[str]] = defaultdict(set)
        for name, phrases in (classes or {}).items():
            for phrase in phrases:
                for word in fold(phrase).split():
                    self._classes[word].add("@" + name)
        found: list[tuple[str, frozenset[str]]] = []
        for intent, examples in intents.items():
            for expression in examples:
                marked = _PLACEHOLDER.sub(lambda m: " @" + m.group(1) + " ", expression)
                example_words = frozenset(fold(marked).split())
                if example_words:
                    found.append((intent, example_words))
        per_intent: dict[str, set[str]] = defaultdict(set)
        for intent, example_words in found:
            per_intent[intent] |= example_words
        total = max(len(per_intent), 1)
        frequency: dict[str, int] = defaultdict(int)
        for vocabulary in per_intent.values():
            for word in vocabulary:
                frequency[word] += 1
        self._idf = {word: 1.0 + math.log(total / n) for word, n in frequency.items()}
        self._examples = [
            _Example(intent, ws, sum(self._idf[w] for w in ws)) for intent, ws in found
        ]
        self._postings: dict[str, list[int]] = defaultdict(list)
        for index, example in enumerate(self._examples):
            for word in example.words:
                self._postings[word].append(index)
        self._near: dict[str, set[str]] = defaultdict(set)
        for word in {*self._idf, *self._classes}:
            if not word.startswith("@"):
                for variant in deletions(word, typo_budget(word)):
                    self._near[variant].add(word)
        self._memo: dict[str, list[tuple[str, float]]] = {}
        #: A word in more examples than this is too common to find candidates by.
        self._common = max(50, len(self._examples) // 20)

    @property
    def intents(self) -> set[str]:
        return {example.intent for example in self._examples}

    def best(self, text: str, among: Collection[str] | None = None) -> Match | None:
        """The most likely intent (of `among`, when given), or None when no word fits any."""
        ranked = self.rank(text, among)
        return ranked[0] if ranked else None

    def rank(self, text: str, among: Collection[str] | None = None) -> list[Match]:
        """Every intent that shares a word with the text, most likely first."""
        said = list(dict.fromkeys(fold(text).split()))
        if not said:
            return []
        known = {word: self._lookup(word) for word in said}
        weights = {
            word: max((self._idf[w] for w, _ in found), default=_UNSEEN_WEIGHT)
            for word, found in known.items()
        }
        said_weight = sum(weights.values())
        #: For each vocabulary word the text stands for: how closely, and by which word.
        hits: dict[str, tuple[float, str]] = {}
        for word, found in known.items():
            for vocabulary_word, similarity in found:
                if similarity > hits.get(vocabulary_word, (0.0, ""))[0]:
                    hits[vocabulary_word] = (similarity, word)
        best: dict[str, float] = {}
        for index in self._candidates(hits):
            example = self._examples[index]
            if among is not None and example.intent not in among:
                continue
            covered = 0.0
            explained: dict[str, float] = {}
            for vocabulary_word in example.words:
                hit = hits.get(vocabulary_word)
                if hit is not None:
                    similarity, word = hit
                    covered += self._idf[vocabulary_word] * similarity
                    if similarity > explained.get(word, 0.0):
                        explained[word] = similarity
            r = covered / example.weight
            p = sum(weights[w] * s for w, s in explained.items()) / said_weight
            score = (1 + _BETA_SQUARED) * p * r / (_BETA_SQUARED * p + r)
            if score > best.get(example.intent, 0.0):
                best[example.intent] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
        return [Match(intent, round(score, 4)) for intent, score in ranked]

    def _candidates(self, hits: dict[str, tuple[float, str]]) -> set[int]:
        """The examples worth scoring: those with a word of the text, where words that most
        examples have are left out once rarer ones have found some."""
        found: set[int] = set()
        for vocabulary_word in sorted(hits, key=lambda w: len(self._postings[w])):
            postings = self._postings[vocabulary_word]
            if found and len(postings) > self._common:
                break
            found.update(postings)
        return found

    def _lookup(self, word: str) -> list[tuple[str, float]]:
        """The vocabulary words (and entity classes) a user's word stands for, each with how
        close it is, from 0 to 1."""
        if word in self._memo:
            return self._memo[word]
        close: dict[str, float] = {}
        if word in self._idf or word in self._classes:
            close[word] = 1.0
        else:
            budget = typo_budget(word)
            candidates: set[str] = set()
            for variant in deletions(word, budget):
                candidates |= self._near.get(variant, set())
            for candidate in candidates:
                edits = distance(word, candidate)
                if edits <= min(budget, typo_budget(candidate)):
                    close[candidate] = 1.0 - edits / max(len(word), len(candidate))
        found: dict[str, float] = {}
        for candidate, similarity in close.items():
            for term in (candidate, *self._classes.get(candidate, ())):
                if term in self._idf and similarity > found.get(term, 0.0):
                    found[term] = similarity
        result = sorted(found.items(), key=lambda item: -item[1])
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[word] = result
        return result
