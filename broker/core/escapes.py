"""Text from outside (a conversation id, a receiver's answer) made safe for one log line:
characters that break a line for some reader or drive a terminal are written out as
escapes, so that such text can neither forge a line nor reach a terminal raw.

Those are the control characters (C0, DEL, C1: `\\x1b`, NEL `\\x85`, CSI `\\x9b`), the line
and paragraph separators (U+2028, U+2029) and the format characters (Cf: bidi overrides,
zero-width ones)."""

from __future__ import annotations

import unicodedata

#: The characters written out, by Unicode category.
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """`text` with every unsafe character written as a Python escape: `\\n`, `\\x1b`,
    `\\u2028`, `\\U000e0001`."""
    if text.isprintable():  # none of them: most text is passed as it is
        return text
    return "".join(_python_escape(c) if _unsafe(c) else c for c in text)


def json_line(line: str) -> str:
    """A JSON text, as `json.dumps(..., ensure_ascii=False)` writes it, with every unsafe
    character written as a JSON escape; `json.dumps` escapes C0 only."""
    if line.isprintable():
        return line
    return "".join(_json_escape(c) if _unsafe(c) else c for c in line)


def _unsafe(c: str) -> bool:
    return unicodedata.category(c) in _UNSAFE


def _python_escape(c: str) -> str:
    code = ord(c)
    if c in _NAMED:
        return _NAMED[c]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _json_escape(c: str) -> str:
    code = ord(c)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: JSON's escape is a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
