"""Small terminal helpers: a progress line while something slow (proving) runs."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def progress(label: str, enabled: bool = True) -> Iterator[None]:
    """Show ``label ... 3.2 s`` on stderr, updated every half second, until the block ends."""
    if not enabled:
        yield
        return
    done = threading.Event()
    start = time.monotonic()
    tty = sys.stderr.isatty()

    def tick() -> None:
        while not done.wait(0.5):
            if tty:
                sys.stderr.write(f"\r  {label} ... {time.monotonic() - start:5.1f} s")
                sys.stderr.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        end = "\r" if tty else ""
        sys.stderr.write(f"{end}  {label} ... done in {time.monotonic() - start:.1f} s\n")
        sys.stderr.flush()
