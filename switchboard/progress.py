"""A progress bar on standard error, for long operator commands."""

from __future__ import annotations

import sys
import time
from types import TracebackType


class Progress:
    def __init__(self, total: int, label: str, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.width = width
        self.done = 0
        self._drawn = 0.0
        self._tty = sys.stderr.isatty()

    def __enter__(self) -> Progress:
        return self

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._drawn >= 0.1 or self.done >= self.total:
            self._drawn = now
            self._draw()

    def _draw(self) -> None:
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label} [{bar}] {self.done}/{self.total}"
        sys.stderr.write(("\r" + line) if self._tty else (line + "\n"))
        sys.stderr.flush()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tty:
            sys.stderr.write("\n")
