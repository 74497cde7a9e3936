"""API tests run the Flask app in-process on the real Redis: each is skipped without it
locally, and fails without it under CI=true."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import web_app as web_app_module
from tests.app_redis import require_app_redis
from tests.web_app import WebApp, web_app


@pytest.fixture(autouse=True)
def real_redis() -> None:
    require_app_redis()


@pytest.fixture(params=["flask", "server"])
def served_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A test of the message routes runs twice: with every request answered by the Flask app,
    then with what `switchboard web` answers itself answered that way
    (tests/direct_answers.py)."""
    monkeypatch.setattr(web_app_module, "DIRECT", request.param == "server")
    return str(request.param)


@pytest.fixture
def web() -> Iterator[WebApp]:
    """The app with the test settings; a module that needs others defines its own `web`."""
    with web_app() as made:
        yield made
