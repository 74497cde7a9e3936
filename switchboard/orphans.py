"""Child processes that end with the process that started them, even one killed with
SIGKILL (which runs no clean-up): `switchboard run` must not leave a web process, a worker
or an embedded Redis writing its data folder behind it."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

#: prctl(2)'s option: the signal the child gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For `subprocess.Popen(preexec_fn=...)`: in the child, before it runs its program, ask
    Linux for SIGTERM when the parent dies (elsewhere, nothing); and leave the parent's
    process group, so that Ctrl-C in a terminal (SIGINT to the whole group) reaches the
    parent alone, which stops the roles first and Redis last."""
    os.setpgrp()
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)
