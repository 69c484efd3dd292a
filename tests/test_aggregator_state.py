"""The aggregator's state file, opened by several competing workers at once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from zkfl.aggregator.state import AggregatorState, Decision
from zkfl.dashboard.notes import NotesStore

WORKERS = 4
TRIALS = 100
WRITES = 6


def _open_together(opener, paths: list[Path]) -> list[BaseException]:  # type: ignore[no-untyped-def]
    failures: list[BaseException] = []
    for path in paths:
        def work(path: Path = path) -> None:
            try:
                opener(path)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return failures


def test_workers_opening_one_fresh_state_file_at_once_all_open_it(tmp_path: Path) -> None:
    def open_and_write(path: Path) -> None:
        # Closing the last connection checkpoints the file under an exclusive lock, and SQLite does not wait
        # for that lock on its busy timeout when another opener switches the file into WAL: reopening
        # often is what made competing workers fail with "database is locked".
        for _reopening in range(WRITES):
            state = AggregatorState(path)
            state.record_refusal(0, None, "garbage")
            state.set_round(0, "collecting")
            state.close()

    paths = [tmp_path / f"state-{trial}.sqlite" for trial in range(TRIALS)]
    assert _open_together(open_and_write, paths) == []
    state = AggregatorState(paths[0])
    assert len(state.refusals(0)) == WORKERS * WRITES and state.round_state(0)["state"] == "collecting"  # type: ignore[index]


def test_notes_stores_opening_one_fresh_file_at_once_all_open_it(tmp_path: Path) -> None:
    paths = [tmp_path / f"notes-{trial}.sqlite" for trial in range(TRIALS)]
    assert _open_together(NotesStore, paths) == []


def test_a_state_file_from_before_the_added_columns_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE rounds (round INTEGER PRIMARY KEY, state TEXT NOT NULL, global_commitment TEXT, "
                "model_cid TEXT, publish_gas INTEGER, accuracy REAL, loss REAL)")
    old.execute("INSERT INTO rounds (round, state) VALUES (0, 'published')")
    old.commit()
    old.close()
    state = AggregatorState(path)
    state.set_round(1, "published", publish_tx="0xab", aggregation_prove_seconds=1.5, reference_accuracy=0.9)
    assert state.round_state(0)["state"] == "published"  # type: ignore[index]
    assert state.round_state(1)["publish_tx"] == "0xab"  # type: ignore[index]
    state.record_decision(Decision(1, "0xA", "accepted", "", "0x01", 12, [1, 2], 16, 100, {}))
    assert [d.wallet for d in state.accepted(1)] == ["0xa"]
