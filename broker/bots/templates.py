"""Bot definitions that every deployment can create by name: the files of `builtin/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from broker.bots import documents

_FOLDER = Path(__file__).parent / "builtin"

TEMPLATES: dict[str, dict[str, Any]] = {
    path.stem: documents.load(path) for path in sorted(_FOLDER.glob("*.yaml"))
}
