"""Opening a SQLite file that several processes or threads may open at once.

WAL mode lets readers and one writer work side by side, but switching a new file
into WAL, and creating its tables, takes locks for which SQLite does not always
wait on its busy timeout: two workers opening the same fresh file could fail
with "database is locked" before either wrote anything. The opening is retried
here, whole, until the timeout runs out.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30.0


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def open_wal(path: Path, initialise: Callable[[sqlite3.Connection], None],
             timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite3.Connection:
    """An autocommit connection to `path` in WAL mode, with `initialise` (idempotent) run on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout)
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            initialise(db)
            return db
        except sqlite3.OperationalError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if not _is_busy(exc) or time.monotonic() > deadline:
                db.close()
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def add_missing_columns(db: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Add the columns (name -> SQL type) that a file written by an older release lacks."""
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    for name, kind in columns.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
