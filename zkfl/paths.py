"""Where zkfl keeps its state and finds its pinned tools.

``ZKFL_HOME`` (default ``~/.zkfl``) holds the content store, the compiled-circuit
cache, the SRS cache, the chain registry and ezkl's own cache. Everything is keyed
by content hash, so several processes (clients, aggregator, dashboard) on one
machine share it safely.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zkfl.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def zkfl_home() -> Path:
    home = Path(os.environ.get("ZKFL_HOME", Path.home() / ".zkfl")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def cache_dir(*parts: str) -> Path:
    path = zkfl_home().joinpath("cache", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """One builder per cached folder at a time: parallel tests and clients share the cache."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def own_temp_path(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process or thread uses, for a tool
    that writes its output to a path of our choosing before we rename it into place."""
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def write_atomically(path: Path, data: bytes) -> None:
    """Write then rename, through a temporary file of this writer's own: readers never see a
    half-written file, and two writers of one path (threads or processes) never rename each
    other's temporary file away."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def configure_ezkl_cache() -> None:
    """Keep ezkl's own cache inside ZKFL_HOME instead of the user's home folder."""
    os.environ.setdefault("EZKL_REPO_PATH", str(cache_dir("ezkl")))


def tools_dir() -> Path:
    """The npm tools: ``ZKFL_TOOLS``, else a checkout's ``tools/`` (``make setup``), else
    ``ZKFL_HOME/tools`` for an installed wheel (``zkfl tools install``)."""
    if "ZKFL_TOOLS" in os.environ:
        return Path(os.environ["ZKFL_TOOLS"])
    checkout = REPO_ROOT / "tools"
    if (checkout / "package.json").exists() and (REPO_ROOT / "pyproject.toml").exists():
        return checkout
    return zkfl_home() / "tools"


def _tool(relative: str, what: str) -> Path:
    path = tools_dir() / "node_modules" / relative
    if not path.exists():
        raise ConfigError(f"{what} not found at {path}: run `make setup` in a checkout, or `zkfl tools install`")
    return path


def anvil_binary() -> Path:
    return _tool("@foundry-rs/anvil-linux-amd64/bin/anvil", "anvil")


def solc_js_module() -> Path:
    return _tool("solc", "solc-js")


def zokrates_js_module() -> Path:
    return _tool("zokrates-js", "zokrates-js")


def openzeppelin_root() -> Path:
    return _tool("@openzeppelin/contracts", "@openzeppelin/contracts")


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise ConfigError("node not found on PATH: solc-js and zokrates-js need Node.js (apt-get install nodejs)")
    return node
