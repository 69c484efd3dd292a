"""The aggregator's durable state: SQLite on disk, WAL mode, one file per task.

What it holds is what a restart needs so that nothing is lost or counted twice:
every submission decided on chain (with the accepted update's integers), every
refusal with its reason, and each round's state (collecting -> aggregating ->
published). A message is acked only after its row is committed here, so a crash at
any point leaves either the row or a redelivery; never neither.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkfl.paths import zkfl_home
from zkfl.sqlitedb import add_missing_columns, open_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    round INTEGER NOT NULL,
    wallet TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
    reason TEXT NOT NULL DEFAULT '',
    update_commitment TEXT NOT NULL,
    update_scale INTEGER NOT NULL,
    update_values TEXT,              -- JSON list of integers, for accepted updates
    num_samples INTEGER NOT NULL,
    gas INTEGER,
    metrics TEXT NOT NULL DEFAULT '{}',
    decided_at REAL NOT NULL,
    PRIMARY KEY (round, wallet)
);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    round INTEGER,
    wallet TEXT,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('collecting', 'aggregating', 'published')),
    global_commitment TEXT,
    model_cid TEXT,
    publish_gas INTEGER,
    accuracy REAL,
    loss REAL,
    publish_tx TEXT,                 -- the publishGlobalModel transaction (it carries the FedAvg proof)
    aggregation_prove_seconds REAL,
    reference_accuracy REAL          -- float FedAvg over the same accepted batches, where the runner knows it
);
"""
# Columns added after the first release, for state files written before them.
ADDED_ROUND_COLUMNS = {"publish_tx": "TEXT", "aggregation_prove_seconds": "REAL", "reference_accuracy": "REAL"}


@dataclass(frozen=True)
class Decision:
    round: int
    wallet: str
    status: str
    reason: str
    update_commitment: str
    update_scale: int
    update_values: list[int] | None
    num_samples: int
    gas: int | None
    metrics: dict[str, Any]


def default_path(task_key: str) -> Path:
    folder = zkfl_home() / "aggregator"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{task_key}.sqlite"


def _initialise(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA synchronous=FULL")  # a committed decision survives kill -9 and power loss
    db.execute("BEGIN IMMEDIATE")  # one opener at a time creates or migrates the tables
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    add_missing_columns(db, "rounds", ADDED_ROUND_COLUMNS)
    db.execute("COMMIT")


class AggregatorState:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # Competing workers open one file at once: the opening is retried while another holds it.
        self._db = open_wal(self.path, _initialise)

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(sql, args)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------ submissions

    def record_decision(self, d: Decision) -> bool:
        """Store a decision once; returns False if this (round, wallet) was already recorded."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (d.round, d.wallet.lower(), d.status, d.reason, d.update_commitment, d.update_scale,
                 json.dumps(d.update_values) if d.update_values is not None else None, d.num_samples, d.gas,
                 json.dumps(d.metrics), time.time()),
            )
            return cursor.rowcount == 1

    def record_rejection(self, round_: int, wallet: str, reason: str, update_commitment: str, update_scale: int,
                         num_samples: int) -> None:
        """A decision the chain changed after the fact (an accepted update challenged out of its round)."""
        self.record_decision(Decision(round_, wallet.lower(), "rejected", reason, update_commitment, update_scale,
                                      None, num_samples, None, {}))
        self._write("UPDATE submissions SET status = 'rejected', reason = ?, update_values = NULL "
                    "WHERE round = ? AND wallet = ?", (reason, round_, wallet.lower()))

    def decisions(self, round_: int) -> list[Decision]:
        with self._lock:
            rows = self._db.execute(
                "SELECT round, wallet, status, reason, update_commitment, update_scale, update_values, "
                "num_samples, gas, metrics FROM submissions WHERE round = ? ORDER BY wallet", (round_,)).fetchall()
        return [Decision(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None, r[7], r[8],
                         json.loads(r[9])) for r in rows]

    def accepted(self, round_: int) -> list[Decision]:
        return [d for d in self.decisions(round_) if d.status == "accepted"]

    def record_refusal(self, round_: int | None, wallet: str | None, reason: str) -> None:
        self._write("INSERT INTO refusals (round, wallet, reason, at) VALUES (?, ?, ?, ?)",
                    (round_, wallet, reason, time.time()))

    def refusals(self, round_: int | None = None) -> list[tuple[int | None, str | None, str]]:
        with self._lock:
            if round_ is None:
                rows = self._db.execute("SELECT round, wallet, reason FROM refusals ORDER BY id").fetchall()
            else:
                rows = self._db.execute("SELECT round, wallet, reason FROM refusals WHERE round = ? ORDER BY id",
                                        (round_,)).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    # ------------------------------------------------------------ rounds

    def round_state(self, round_: int) -> dict[str, Any] | None:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM rounds WHERE round = ?", (round_,))
            row = cursor.fetchone()
            names = [c[0] for c in cursor.description]
        return dict(zip(names, row, strict=True)) if row else None

    def set_round(self, round_: int, state: str, **fields: Any) -> None:
        columns = ["round", "state", *fields]
        values = (round_, state, *fields.values())
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        self._write(f"INSERT INTO rounds ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                    f"ON CONFLICT(round) DO UPDATE SET {updates}", values)
