"""The action interface of the workers' bot turns (`broker.bots.actions`): API calls over HTTP
through outbound safety, and custom actions from the allowed modules, each within its hard
time limit."""

from __future__ import annotations

import concurrent.futures
import json
import logging

from broker import __version__
from broker.bots import custom_actions
from broker.bots.actions import ActionOutcome, ApiAnswer, ApiRequest, has_header
from broker.bots.custom_actions import ActionContext
from broker.core import defaults, strict_json
from broker.core.loop_thread import LoopThread
from broker.core.settings import Settings
from broker.delivery.http_client import HttpClient, RequestFailed
from workers import runner_lock

log = logging.getLogger(__name__)

#: An API answer past this is not used: the call fails.
MAX_ANSWER_BYTES = 256 * 1024
#: Beyond its own hard limit, how long a call may wait for the loop that makes it (seconds).
_LOOP_GRACE = 1.0


class WorkerActions:
    """One per worker process, shared by its threads; API calls are made on `loop`."""

    def __init__(self, settings: Settings, loop: LoopThread) -> None:
        self._loop = loop
        self._client = HttpClient(
            settings.outbound_allowlist, f"Switchboard-Bots/{__version__}", MAX_ANSWER_BYTES
        )
        self._modules = frozenset(
            name.strip() for name in settings.action_modules.split(",") if name.strip()
        )

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        """The answer, or a failure once `request.timeout` seconds have passed, whatever the
        other end does."""
        runner_lock.let_others_run()
        try:
            return self._loop.run(self._call(request), request.timeout + _LOOP_GRACE)
        except concurrent.futures.TimeoutError:
            return ApiAnswer(None, error=f"no answer within {request.timeout:g} s")

    async def _call(self, request: ApiRequest) -> ApiAnswer:
        body = b"" if request.body is None else json.dumps(request.body).encode()
        headers = dict(request.headers)
        # The definition's own, in whatever case it wrote them, are sent in their place.
        if not has_header(headers, "Accept"):
            headers["Accept"] = "application/json"
        if request.body is not None and not has_header(headers, "Content-Type"):
            headers["Content-Type"] = "application/json"
        try:
            answer = await self._client.request(
                request.method,
                request.url,
                body,
                headers,
                connect_timeout=min(defaults.CONNECT_TIMEOUT, request.timeout),
                total_timeout=request.timeout,
            )
        except RequestFailed as exc:
            return ApiAnswer(None, error=str(exc))
        if not answer.complete:
            return ApiAnswer(None, error=f"answer over {MAX_ANSWER_BYTES} bytes")
        try:
            parsed = strict_json.loads(answer.body) if answer.body else None
        except json.JSONDecodeError:
            parsed = None  # not JSON at all: `save` finds nothing in it
        except ValueError as exc:  # JSON that cannot be kept: NaN, too deep, not Unicode
            log.info("an API answer cannot be used: %r", exc.__cause__ or exc)
            return ApiAnswer(None, error=f"the answer cannot be used: {exc}")
        return ApiAnswer(answer.status, parsed)

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome:
        runner_lock.let_others_run()
        result, error = custom_actions.run(name, context, timeout, self._modules)
        return ActionOutcome(result, error)
