"""The structured reference string (KZG on BN254), generated locally and cached.

``ezkl.gen_srs`` makes an *insecure* SRS from local randomness: whoever ran it knows
its toxic waste and could forge proofs. It is what lets zkfl run with no network, and
it is fine for development and tests. Production needs an SRS from a public
ceremony (e.g. the Perpetual Powers of Tau), loaded in its place.

``gen_srs`` is not deterministic, so the SRS is an artifact like any other: every
party must use the same file (published under its CID in the task package).
"""

from __future__ import annotations

import os
from pathlib import Path

from zkfl.field.ezkl_api import ezkl
from zkfl.paths import cache_dir, own_temp_path


def srs_path(logrows: int) -> Path:
    """The SRS of exactly ``logrows`` (a larger one slows every step), made on first use."""
    path = cache_dir("srs") / f"kzg{logrows}.srs"
    if not path.exists():
        tmp = own_temp_path(path)
        ezkl.gen_srs(str(tmp), logrows)
        os.replace(tmp, path)
    return path
