"""Stopping the services zkfl starts (anvil, an IPFS node): each runs in its own process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


def terminate_group(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM the process group led by ``pid`` (the service shuts down cleanly), SIGKILL it if
    it is still there after ``timeout``. Without a child handle (a service started by another
    command), its exit is polled for."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if process is not None:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
            process.wait()
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def exited(pid: int) -> bool:
    """Whether ``pid`` has exited (reaping it first if it is our own child)."""
    with contextlib.suppress(ChildProcessError):  # not our child: started by an earlier command
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
