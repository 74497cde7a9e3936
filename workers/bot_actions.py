"""The action interface of the workers' bot turns (`broker.bots.actions`): API calls over HTTP
through outbound safety, and custom actions from the allowed modules, each within its hard
time limit."""

from __future__ import annotations

import concurrent.futures
import json
import time

import requests

from broker import __version__
from broker.bots import custom_actions
from broker.bots.actions import ActionOutcome, ApiAnswer, ApiRequest
from broker.bots.custom_actions import ActionContext
from broker.core import defaults
from broker.core.settings import Settings
from broker.delivery.http_client import failure_text, safe_http_session

#: An API answer past this is not read: the call fails.
MAX_ANSWER_BYTES = 256 * 1024
#: API calls in flight at once in one process.
_CALLS_AT_ONCE = 16


class WorkerActions:
    """One per worker process, shared by its threads."""

    def __init__(self, settings: Settings) -> None:
        self._http_session = safe_http_session(settings.outbound_allowlist, _CALLS_AT_ONCE)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=_CALLS_AT_ONCE, thread_name_prefix="bot-api"
        )
        self._modules = frozenset(
            name.strip() for name in settings.action_modules.split(",") if name.strip()
        )

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        """The answer, or a failure once `request.timeout` seconds have passed, whatever the
        other end does (the request itself is abandoned to its socket timeouts)."""
        future = self._pool.submit(self._call, request, time.monotonic() + request.timeout)
        try:
            return future.result(timeout=request.timeout)
        except concurrent.futures.TimeoutError:
            return ApiAnswer(None, error=f"no answer within {request.timeout:g} s")

    def _call(self, request: ApiRequest, deadline: float) -> ApiAnswer:
        connect_timeout = min(defaults.CONNECT_TIMEOUT, request.timeout)
        try:
            response = self._http_session.request(
                request.method,
                request.url,
                json=request.body,
                headers={
                    "Accept": "application/json",
                    "User-Agent": f"Switchboard-Bots/{__version__}",
                    **request.headers,
                },
                timeout=(connect_timeout, request.timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.RequestException as exc:
            why = failure_text(exc, connect_timeout=connect_timeout, total_timeout=request.timeout)
            return ApiAnswer(None, error=why)
        with response:
            raw = bytearray()
            try:
                for chunk in response.iter_content(chunk_size=8192):
                    raw.extend(chunk)
                    if len(raw) > MAX_ANSWER_BYTES:
                        return ApiAnswer(None, error=f"answer over {MAX_ANSWER_BYTES} bytes")
                    if time.monotonic() > deadline:
                        return ApiAnswer(None, error="answer too slow")
            except requests.exceptions.RequestException as exc:
                return ApiAnswer(None, error=f"reading the answer failed: {exc}")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return ApiAnswer(response.status_code, body)

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome:
        result, error = custom_actions.run(name, context, timeout, self._modules)
        return ActionOutcome(result, error)
