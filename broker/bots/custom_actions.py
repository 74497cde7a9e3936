"""Custom actions: a Python callable that a definition names as `module:function`.

The interface, in full::

    from broker.bots.custom_actions import ActionContext, ActionResult

    def price(context: ActionContext) -> ActionResult:
        size = context.variables.get("order.size")
        return ActionResult(variables={"order.price": 9.5 if size == "small" else 12.5},
                            messages=[{"text": "That makes it..."}], next=None)

`context.variables` is a copy of the conversation's variables (changing it changes
nothing); `context.locale` the user's language, if known; `context.state` the state that
runs the action. The result's `variables` are set (None unsets one), its `messages`
(BotMessages, docs/wire-contract.md §3, or strings) are sent, and `next`, when it names a
state, is where the dialogue goes (else the state's `next`). Returning None changes nothing.

An action has a time limit (the state's `timeout`, 2 s by default, at most 10 s): past it,
or if it raises (SystemExit too), the state's `onError` branch is taken. An action still
waiting for a thread of the pool at its limit never runs; Python cannot stop a thread, so
one that started and overruns goes on in the background until it returns; its result is
dropped.
Workers run only the actions of the modules that `SWITCHBOARD_ACTION_MODULES` names.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Threads that run custom actions in one process.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="bot-action")


@dataclass(frozen=True)
class ActionContext:
    variables: Mapping[str, Any]
    locale: str | None
    state: str


@dataclass(frozen=True)
class ActionResult:
    variables: dict[str, Any] = field(default_factory=dict)
    messages: list[Any] = field(default_factory=list)
    next: str | None = None


def resolve(name: str, allowed_modules: Collection[str] | None) -> Callable[[ActionContext], Any]:
    """The callable `module:function`; ValueError when it is not there or not allowed
    (`allowed_modules` None allows every module)."""
    module_name, _, function = name.partition(":")
    if allowed_modules is not None and module_name not in allowed_modules:
        raise ValueError(
            f"module {module_name!r} is not one that custom actions may come from "
            "(SWITCHBOARD_ACTION_MODULES)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    except (Exception, SystemExit) as exc:  # its own code failed as it was imported
        log.warning("importing custom action module %s failed", module_name, exc_info=exc)
        raise ValueError(
            f"cannot import {module_name!r}: it raised {type(exc).__name__}: {exc}"
        ) from None
    found = getattr(module, function, None)
    if not callable(found):
        raise ValueError(f"{module_name!r} has no function {function!r}")
    return found  # type: ignore[no-any-return]


def run(
    name: str,
    context: ActionContext,
    timeout: float,
    allowed_modules: Collection[str] | None = None,
) -> tuple[ActionResult | None, str | None]:
    """Run the action within `timeout` seconds: its result, or None and why not."""
    try:
        action = resolve(name, allowed_modules)
    except ValueError as exc:
        return None, str(exc)
    future = _POOL.submit(action, context)
    try:
        # What the action raised, not raised here: SystemExit and KeyboardInterrupt too (a
        # library that calls `sys.exit()`) are its failure, while a KeyboardInterrupt of the
        # thread that waits goes on up.
        raised = future.exception(timeout=timeout)
    except concurrent.futures.TimeoutError:
        # One still queued behind others never starts: it is no use once its turn went on.
        future.cancel()
        return None, f"{name} did not finish within {timeout:g} s"
    if raised is not None:
        log.info("custom action %s raised", name, exc_info=raised)
        return None, _raised(name, raised)
    result = future.result()
    if result is None:
        return ActionResult(), None
    if not isinstance(result, ActionResult):
        return None, f"{name} returned {type(result).__name__}, not an ActionResult"
    return result, None


def _raised(name: str, exc: BaseException) -> str:
    if not isinstance(exc, Exception):  # SystemExit (`sys.exit()`), KeyboardInterrupt
        detail = f": {exc}" if str(exc) else ""
        return f"{name} tried to exit ({type(exc).__name__}{detail}) instead of returning"
    return f"{name} raised {type(exc).__name__}: {exc}"
