"""The workers' action interface: API calls through outbound safety within a hard time limit,
and custom actions from allowed modules within theirs."""

from __future__ import annotations

import concurrent.futures
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from broker.bots import custom_actions
from broker.bots.actions import ApiRequest
from broker.bots.custom_actions import ActionContext, ActionResult
from broker.bots.engine import Engine
from broker.core.loop_thread import LoopThread
from broker.core.settings import Settings
from broker.delivery.http_client import Answer as HttpAnswer
from tests.receivers import Answer, Hit, Receiver
from tests.settings import LOOPBACK
from tests.unit.test_engine_states import bot, intro, texts
from workers.bot_actions import WorkerActions

CONTEXT = ActionContext({"size": "L"}, "en", "price")
#: Released at the end of a test, so that an action left running stops.
RELEASE = threading.Event()


def price(context: ActionContext) -> ActionResult:
    return ActionResult(variables={"price": 12.5 if context.variables["size"] == "L" else 9})


def slow(context: ActionContext) -> ActionResult:
    RELEASE.wait(10)
    return ActionResult()


def broken(context: ActionContext) -> ActionResult:
    raise RuntimeError("out of dough")


def wrong(context: ActionContext) -> str:
    return "not a result"


def exits(context: ActionContext) -> ActionResult:
    sys.exit(2)  # as argparse or click do inside a library


def interrupted(context: ActionContext) -> ActionResult:
    raise KeyboardInterrupt


#: What `records` did, in order.
RECORDED: list[str] = []


def records(context: ActionContext) -> ActionResult:
    RECORDED.append(context.state)
    return ActionResult()


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread("bot-api")
    yield thread
    thread.stop()


@pytest.fixture
def kitchen() -> Iterator[Receiver]:
    def behaviour(hit: Hit) -> Answer:
        if hit.path == "/slow":
            return Answer(200, body=b"{}", delay=3)
        if hit.path == "/text":
            return Answer(200, body=b"not json")
        if hit.path == "/nan":
            return Answer(200, body=b'{"v": NaN}')
        if hit.path == "/deep":
            return Answer(200, body=b"[" * 100_000 + b"]" * 100_000)
        if hit.path == "/long-number":
            return Answer(200, body=b'{"n": 1' + b"0" * 5000 + b"}")
        if hit.path == "/huge":
            return Answer(200, body=b"[" + b"1," * 200_000 + b"1]")
        order = json.loads(hit.raw)
        return Answer(
            201, {"Content-Type": "application/json"}, json.dumps({"got": order}).encode()
        )

    receiver = Receiver(behaviour)
    yield receiver
    receiver.stop()


@pytest.fixture
def actions(loop: LoopThread) -> Callable[..., WorkerActions]:
    def make(**settings: object) -> WorkerActions:
        return WorkerActions(Settings(outbound_allowlist=LOOPBACK).with_changes(**settings), loop)

    return make


def request(url: str, timeout: float = 2.0) -> ApiRequest:
    return ApiRequest("POST", url, {"X-Bot": "pizza"}, {"n": 2}, timeout)


def test_an_api_call_sends_json_and_reads_json(
    kitchen: Receiver, actions: Callable[..., WorkerActions]
) -> None:
    answer = actions().call_api(request(f"http://127.0.0.1:{kitchen.port}/orders"))
    assert (answer.status, answer.body, answer.error) == (201, {"got": {"n": 2}}, None)
    (hit,) = kitchen.hits
    assert hit.headers["x-bot"] == "pizza" and hit.headers["content-type"] == "application/json"


def test_an_answer_that_is_not_json_has_no_body(
    kitchen: Receiver, actions: Callable[..., WorkerActions]
) -> None:
    answer = actions().call_api(request(f"http://127.0.0.1:{kitchen.port}/text"))
    assert (answer.status, answer.body) == (200, None)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/nan", "the answer cannot be used: NaN is not a JSON value"),
        ("/deep", "the answer cannot be used: nested more than 100 deep"),
        ("/long-number", "the answer cannot be used: a number is too large"),
    ],
)
def test_an_answer_that_is_json_no_one_could_read_fails_the_call(
    kitchen: Receiver, actions: Callable[..., WorkerActions], path: str, error: str
) -> None:
    """So the state takes `onError`: NaN would make every document that carries it invalid
    JSON; a deep one would fail the turn (and the call be made again) on each try."""
    answer = actions().call_api(request(f"http://127.0.0.1:{kitchen.port}{path}"))
    assert (answer.status, answer.body, answer.error) == (None, None, error)


def test_an_api_call_ends_at_its_hard_time_limit(
    kitchen: Receiver, actions: Callable[..., WorkerActions]
) -> None:
    started = time.monotonic()
    answer = actions().call_api(request(f"http://127.0.0.1:{kitchen.port}/slow", timeout=0.5))
    assert time.monotonic() - started < 1.5
    assert answer.status is None and answer.error


def test_outbound_safety_refuses_an_unsafe_address_at_call_time(
    kitchen: Receiver, loop: LoopThread
) -> None:
    answer = WorkerActions(Settings(), loop).call_api(request(f"http://127.0.0.1:{kitchen.port}/x"))
    assert answer.status is None
    assert answer.error == "refused by outbound safety: resolves to 127.0.0.1"
    assert kitchen.hits == []


def test_an_answer_over_the_cap_fails_the_call(
    kitchen: Receiver, actions: Callable[..., WorkerActions]
) -> None:
    answer = actions().call_api(request(f"http://127.0.0.1:{kitchen.port}/huge"))
    assert answer.status is None and answer.error == "answer over 262144 bytes"


def test_custom_actions_run_from_allowed_modules_only(
    actions: Callable[..., WorkerActions],
) -> None:
    allowed = actions(action_modules=f"other, {__name__}")
    outcome = allowed.run_action(f"{__name__}:price", CONTEXT, 1)
    assert outcome.result == ActionResult(variables={"price": 12.5}) and outcome.error is None
    refused = actions().run_action(f"{__name__}:price", CONTEXT, 1)
    assert refused.result is None and "SWITCHBOARD_ACTION_MODULES" in str(refused.error)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (f"{__name__}:slow", f"{__name__}:slow did not finish within 0.2 s"),
        (f"{__name__}:broken", f"{__name__}:broken raised RuntimeError: out of dough"),
        (f"{__name__}:wrong", f"{__name__}:wrong returned str, not an ActionResult"),
        (f"{__name__}:exits", f"{__name__}:exits tried to exit (SystemExit: 2) instead of"),
        (f"{__name__}:interrupted", f"{__name__}:interrupted tried to exit (KeyboardInterrupt)"),
        (f"{__name__}:missing", f"{__name__!r} has no function 'missing'"),
        ("no_such_module:f", "cannot import 'no_such_module'"),
    ],
)
def test_a_custom_action_that_fails_says_why(name: str, error: str) -> None:
    try:
        result, why = custom_actions.run(name, CONTEXT, 0.2)
    finally:
        RELEASE.set()
    assert result is None and why is not None and why.startswith(error)


@pytest.mark.parametrize("raised", ["RuntimeError('no config')", "SystemExit(3)", "1 +"])
def test_an_action_whose_module_fails_as_it_is_imported_says_why(
    raised: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a turn that fails on each try."""
    monkeypatch.syspath_prepend(str(tmp_path))
    module = f"failing_actions_{abs(hash(raised))}"
    (tmp_path / f"{module}.py").write_text(f"raise {raised}\n" if raised != "1 +" else "1 +\n")
    result, why = custom_actions.run(f"{module}:f", CONTEXT, 1)
    assert result is None and why is not None
    assert why.startswith(f"cannot import {module!r}: ")


def test_an_action_that_exits_takes_its_error_branch(
    actions: Callable[..., WorkerActions],
) -> None:
    """Not a turn that fails (or a turn runner that ends) on each try."""
    states: dict[str, Any] = {
        "start": {"type": "action", "action": f"{__name__}:exits", "next": "n", "onError": "e"},
        "n": {"say": "done"},
        "e": {"say": "{{action.error}}"},
    }
    turn = intro(Engine(bot(states), actions(action_modules=__name__)))
    assert texts(turn) == [f"{__name__}:exits tried to exit (SystemExit: 2) instead of returning"]


def test_an_action_still_waiting_for_a_thread_at_its_limit_never_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its turn took `onError` already: run later, it would do what the user was told failed."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(custom_actions, "_POOL", pool)
    busy = threading.Event()
    pool.submit(busy.wait, 10)  # an action that overruns, holding the only thread
    RECORDED.clear()
    result, why = custom_actions.run(f"{__name__}:records", CONTEXT, 0.1)
    busy.set()
    pool.submit(lambda: None).result(timeout=5)  # what was queued before it has run
    assert result is None and why == f"{__name__}:records did not finish within 0.1 s"
    assert RECORDED == []
    assert custom_actions.run(f"{__name__}:records", CONTEXT, 1) == (ActionResult(), None)
    assert RECORDED == ["price"]
    pool.shutdown()


def test_the_definitions_own_headers_stand_in_any_case(
    actions: Callable[..., WorkerActions], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP's header names are not case-sensitive: ours beside them would send each twice."""
    sent: list[dict[str, str]] = []

    async def request(
        method: str, url: str, body: bytes, headers: Mapping[str, str], **_: float
    ) -> HttpAnswer:
        sent.append(dict(headers))
        return HttpAnswer(200, {}, b"{}")

    worker = actions()
    monkeypatch.setattr(worker._client, "request", request)
    own = {"content-type": "application/vnd.kitchen+json", "accept": "*/*"}
    answer = worker.call_api(ApiRequest("POST", "https://kitchen.example/", own, {"n": 1}, 1.0))
    assert answer.status == 200 and sent == [own]
    worker.call_api(ApiRequest("POST", "https://kitchen.example/", {}, {"n": 1}, 1.0))
    assert sent[1] == {"Accept": "application/json", "Content-Type": "application/json"}
