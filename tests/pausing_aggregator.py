"""`zkfl aggregator run`, holding still at a crash point so a fault test can SIGKILL it there.

Test-only: the package's Aggregator has named hooks (``after_relay``, ``before_publish``);
this subclass sleeps in the ones named by ``ZKFL_TEST_PAUSE_AFTER_RELAY`` /
``ZKFL_TEST_PAUSE_BEFORE_PUBLISH`` (seconds), then runs the real command line.
"""

from __future__ import annotations

import os
import sys
import time

import zkfl.aggregator.service
from zkfl.cli import main
from zkfl.middleware.messages import UpdateSubmission


def _pause(name: str) -> None:
    seconds = float(os.environ.get(f"ZKFL_TEST_PAUSE_{name}", 0))
    if seconds:
        time.sleep(seconds)


class PausingAggregator(zkfl.aggregator.service.Aggregator):
    def after_relay(self, submission: UpdateSubmission) -> None:
        _pause("AFTER_RELAY")

    def before_publish(self, round_: int) -> None:
        _pause("BEFORE_PUBLISH")


if __name__ == "__main__":
    zkfl.aggregator.service.Aggregator = PausingAggregator  # type: ignore[misc]
    sys.exit(main(sys.argv[1:]))
