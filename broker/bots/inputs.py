"""Typed input: what a user's answer means as a number, an email address, a phone number, a
date, one of a list, or yes/no, normalised; None when it is not one.

The same readers find the built-in entities in free text (`broker.bots.entities`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from broker.bots.words import distance, fold, typo_budget

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\(?\d[\d\s().\-/]{4,22}\d")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DAY_FIRST = re.compile(r"\b(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})\b")

#: Number words a user may write instead of digits (English, French, Dutch, German).
NUMBER_WORDS = {
    **dict.fromkeys(("zero", "zéro", "nul", "null"), 0),
    **dict.fromkeys(("one", "un", "une", "een", "eins"), 1),
    **dict.fromkeys(("two", "deux", "twee", "zwei"), 2),
    **dict.fromkeys(("three", "trois", "drie", "drei"), 3),
    **dict.fromkeys(("four", "quatre", "vier"), 4),
    **dict.fromkeys(("five", "cinq", "vijf", "funf"), 5),
    **dict.fromkeys(("six", "zes", "sechs"), 6),
    **dict.fromkeys(("seven", "sept", "zeven", "sieben"), 7),
    **dict.fromkeys(("eight", "huit", "acht"), 8),
    **dict.fromkeys(("nine", "neuf", "negen", "neun"), 9),
    **dict.fromkeys(("ten", "dix", "tien", "zehn"), 10),
    **dict.fromkeys(("eleven", "onze", "elf"), 11),
    **dict.fromkeys(("twelve", "douze", "twaalf", "zwolf"), 12),
}
_YES = {"yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "right", "correct", "true"}
_YES |= {"oui", "ouais", "ja", "jawel", "si", "affirmative", "absolutely", "of course"}
_NO = {"no", "n", "nope", "nah", "not", "never", "false", "wrong", "non", "nee", "nein"}
_RELATIVE_DAYS = {
    **dict.fromkeys(("today", "aujourdhui", "vandaag", "heute"), 0),
    **dict.fromkeys(("tomorrow", "demain", "morgen"), 1),
    **dict.fromkeys(("yesterday", "hier", "gisteren", "gestern"), -1),
}


def number(text: str) -> int | float | None:
    """The number in the text: digits (a decimal comma is read as a point) or a number word."""
    found = _NUMBER.search(text)
    if found:
        value = float(found.group().replace(",", "."))
        return int(value) if value.is_integer() and "." not in found.group() else value
    for word in fold(text).split():
        if word in NUMBER_WORDS:
            return NUMBER_WORDS[word]
    return None


def email(text: str) -> str | None:
    found = _EMAIL.search(text)
    return found.group().lower() if found else None


def phone(text: str) -> str | None:
    """The phone number in the text as digits, with a leading + when it had one."""
    found = _PHONE.search(text)
    if not found:
        return None
    digits = re.sub(r"\D", "", found.group())
    if not 6 <= len(digits) <= 15:
        return None
    return ("+" if found.group().startswith("+") else "") + digits


def date(text: str, today: dt.date | None) -> str | None:
    """The date in the text, as YYYY-MM-DD: ISO, day first (25/12/2026), or today, tomorrow
    and yesterday when the day the message came is known."""
    found = _ISO_DATE.search(text)
    if found:
        year, month, day = (int(part) for part in found.groups())
        return _iso(year, month, day)
    found = _DAY_FIRST.search(text)
    if found:
        day, month, year = (int(part) for part in found.groups())
        return _iso(year + 2000 if year < 100 else year, month, day)
    if today is not None:
        for word in fold(text).split():
            if word in _RELATIVE_DAYS:
                return (today + dt.timedelta(days=_RELATIVE_DAYS[word])).isoformat()
    return None


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def yes_no(text: str) -> bool | None:
    folded = fold(text)
    said = set(folded.split()) | {folded}
    yes, no = bool(said & _YES), bool(said & _NO)
    return yes if yes != no else None


def choice(text: str, options: Mapping[str, Sequence[str]]) -> str | None:
    """The option (its canonical value) that the text names, by the value or a synonym, exactly
    or within a small typo; None when it names none or more than one."""
    folded = fold(text)
    if not folded:
        return None
    padded = f" {folded} "
    named = {
        value
        for value, synonyms in options.items()
        for phrase in (value, *synonyms)
        if (folded_phrase := fold(phrase)) and f" {folded_phrase} " in padded
    }
    if len(named) == 1:
        return named.pop()
    if named:
        exact = [value for value in named if fold(value) == folded]
        return exact[0] if len(exact) == 1 else None
    said = {folded, *folded.split()}
    close = {
        value
        for value, synonyms in options.items()
        for phrase in (value, *synonyms)
        if any(_close(word, fold(phrase)) for word in said)
    }
    return close.pop() if len(close) == 1 else None


def _close(said: str, phrase: str) -> bool:
    budget = min(typo_budget(said), typo_budget(phrase))
    return budget > 0 and distance(said, phrase) <= budget


def read(
    kind: str, text: str, *, today: dt.date | None, options: Mapping[str, Sequence[str]]
) -> Any:
    """The answer `text` read as `kind` (the input types of a definition), or None."""
    text = text.strip()
    if kind == "text":
        return text or None
    if kind == "number":
        return number(text)
    if kind == "email":
        return email(text)
    if kind == "phone":
        return phone(text)
    if kind == "date":
        return date(text, today)
    if kind == "yesno":
        return yes_no(text)
    if kind == "choice":
        return choice(text, options)
    raise ValueError(f"no input type {kind!r}")
