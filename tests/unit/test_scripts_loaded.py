"""The Lua scripts are read once, at import: a process at its open-files limit still runs
them."""

from __future__ import annotations

import subprocess
import sys

_AT_THE_LIMIT = """
import resource
from broker.core import scripts
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
held = []
try:
    while True:
        held.append(open("/dev/null"))
except OSError:
    pass
print(len([scripts.lua(name).sha for name in scripts.names()]))
"""


def test_every_script_is_at_hand_when_no_file_can_be_opened() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _AT_THE_LIMIT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 20
