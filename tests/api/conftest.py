"""API tests run the Flask app in-process on the real Redis: each is skipped without it
locally, and fails without it under CI=true."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.app_redis import require_app_redis
from tests.web_app import WebApp, web_app


@pytest.fixture(autouse=True)
def real_redis() -> None:
    require_app_redis()


@pytest.fixture
def web() -> Iterator[WebApp]:
    """The app with the test settings; a module that needs others defines its own `web`."""
    with web_app() as made:
        yield made
