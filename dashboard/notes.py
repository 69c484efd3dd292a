"""Organisations' private notes on their tasks: off chain, on the dashboard's machine.

Keyed by the task's key (chain instance, federation address, task id), so neither
another chain nor a restarted anvil, which reuses addresses and ids, sees them.
Everything on chain stays public; only these notes are gated by sign-in, and the
dashboard lets whoever holds the task's organisation role on chain read and write them.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from zkfl.sqlitedb import open_wal

MAX_NOTES_CHARS = 20_000


def _initialise(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS task_notes (task_key TEXT PRIMARY KEY, text TEXT NOT NULL, "
               "author TEXT NOT NULL)")


class NotesStore:
    def __init__(self, path: Path) -> None:
        self._db = open_wal(path, _initialise)
        self._lock = threading.Lock()

    def get(self, task_key: str) -> str:
        with self._lock:
            row = self._db.execute("SELECT text FROM task_notes WHERE task_key=?", (task_key,)).fetchone()
        return str(row[0]) if row else ""

    def put(self, task_key: str, text: str, author: str) -> None:
        if len(text) > MAX_NOTES_CHARS:
            raise ValueError(f"notes are limited to {MAX_NOTES_CHARS} characters")
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO task_notes VALUES (?, ?, ?)", (task_key, text, author))
