"""Redis connections: a URL that is not Redis's is refused before any connection."""

from __future__ import annotations

import pytest

from broker.core.connection import connect
from broker.core.errors import ConfigError


def test_a_url_that_is_not_redis_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        connect("http://127.0.0.1:6379")
