"""Bot definitions that every deployment can create by name."""

from __future__ import annotations

from typing import Any

ECHO: dict[str, Any] = {
    "startState": "welcome",
    "fallbackState": "echo",
    "offloadFailedState": "no_agent",
    "routes": [{"match": "human", "exact": True, "next": "human"}],
    "states": [
        {"id": "welcome", "messages": [{"text": "Hello! I repeat what you say."}]},
        {"id": "echo", "messages": [{"text": "You said: {{lastMessage}}"}]},
        {"id": "human", "actions": [{"type": "offload", "payload": {"reason": "user asked"}}]},
        {"id": "no_agent", "messages": [{"text": "No agent is available right now."}]},
    ],
}

TEMPLATES: dict[str, dict[str, Any]] = {"echo": ECHO}
