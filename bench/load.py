"""The benchmark's load generator: user messages over keep-alive HTTP/1.1 connections, as fast
as they are accepted or at a set pace. Run as its own process:

    python -m bench.load PLAN_JSON

It prints one JSON object: when each message was sent (monotonic seconds), and how many
were accepted. Message n is `m<n>` from conversation `c<n % conversations>`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field


@dataclass
class Plan:
    port: int
    path: str
    token: str
    messages: int
    conversations: int
    connections: int
    #: Messages a second, or 0 for as fast as they are accepted.
    rate: float = 0.0
    #: A GET of `path` for `seconds` instead of messages: the yardstick.
    get_for_seconds: float = 0.0
    #: Every how many conversations one goes to `slow_path` with `slow_token` (isolation).
    slow_every: int = 0
    slow_path: str = ""
    slow_token: str = ""


@dataclass
class Result:
    sent_at: list[float] = field(default_factory=list)
    accepted: int = 0
    refused: int = 0
    started: float = 0.0
    finished: float = 0.0
    gets: int = 0
    #: This process's own CPU seconds while sending: a control, the same work per message
    #: at every pace, for what the machine alone makes a message cost when traffic is light.
    cpu_seconds: float = 0.0


def _request(plan: Plan, number: int) -> bytes:
    conversation = number % plan.conversations
    path, token = plan.path, plan.token
    if plan.slow_every and conversation % plan.slow_every == 0:
        path, token = plan.slow_path, plan.slow_token
    body = json.dumps(
        {"conversationId": f"c{conversation}", "message": {"textMessage": {"text": f"m{number}"}}}
    ).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The answer's status, and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, keep = 0, True
    for line in head.split(b"\r\n"):
        lowered = line.lower()
        if lowered.startswith(b"content-length:"):
            length = int(line[15:])
        elif lowered.startswith(b"connection:") and b"close" in lowered:
            keep = False
    if length:
        await reader.readexactly(length)
    return status, keep


async def _send_messages(plan: Plan, result: Result) -> None:
    result.sent_at = [0.0] * plan.messages
    next_number = 0
    start = time.monotonic()

    async def connection() -> None:
        nonlocal next_number
        reader, writer = await asyncio.open_connection("127.0.0.1", plan.port)
        while next_number < plan.messages:
            number = next_number
            next_number += 1
            if plan.rate:
                wait = start + number / plan.rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            result.sent_at[number] = time.monotonic()
            writer.write(_request(plan, number))
            status, keep = await _read_answer(reader)
            if status == 202:
                result.accepted += 1
            else:
                result.refused += 1
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", plan.port)
        writer.close()

    await asyncio.gather(*(connection() for _ in range(plan.connections)))


async def _get_for(plan: Plan, result: Result) -> None:
    request = f"GET {plan.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    deadline = time.monotonic() + plan.get_for_seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", plan.port)
        while time.monotonic() < deadline:
            writer.write(request)
            status, keep = await _read_answer(reader)
            result.gets += status == 200
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", plan.port)
        writer.close()

    await asyncio.gather(*(connection() for _ in range(plan.connections)))


def run(plan: Plan) -> Result:
    result = Result(started=time.monotonic())
    cpu = time.process_time()
    if plan.get_for_seconds:
        asyncio.run(_get_for(plan, result))
    else:
        asyncio.run(_send_messages(plan, result))
    result.finished = time.monotonic()
    result.cpu_seconds = time.process_time() - cpu
    return result


if __name__ == "__main__":
    outcome = run(Plan(**json.loads(sys.argv[1])))
    json.dump(asdict(outcome), sys.stdout)
