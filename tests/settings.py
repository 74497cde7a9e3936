"""Settings the tests share: the outbound allowlist that lets local receivers through."""

from __future__ import annotations

from broker.core.settings import parse_allowlist

#: Loopback, where the tests' receivers listen: as an environment variable gives it...
LOOPBACK_ALLOWLIST = "127.0.0.0/8,::1/128"
#: ...and as Settings hold it.
LOOPBACK = parse_allowlist(LOOPBACK_ALLOWLIST)
