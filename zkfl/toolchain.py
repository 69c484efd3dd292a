"""Install the pinned Node.js tools where zkfl looks for them.

A checkout installs them with `make setup` (npm ci in tools/); a wheel ships the same
manifest and lockfile (package ``zkfl._npm``), and `zkfl tools install` runs `npm ci`
into ``ZKFL_TOOLS`` (default ``ZKFL_HOME/tools``). Nothing is downloaded at run time.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from zkfl.errors import ConfigError
from zkfl.paths import tools_dir

MANIFEST = ("package.json", "package-lock.json")


def _manifest_dir() -> Path:
    import zkfl._npm

    return Path(zkfl._npm.__file__).resolve().parent


def install_tools() -> Path:
    """`npm ci` the pinned tools into tools_dir(); returns it."""
    target = tools_dir()
    target.mkdir(parents=True, exist_ok=True)
    source = _manifest_dir()
    if source != target.resolve():
        for name in MANIFEST:
            shutil.copyfile(source / name, target / name)
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError("npm not found on PATH: the tools need Node.js 20 and npm (apt-get install nodejs npm)")
    proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ConfigError(f"npm ci in {target} failed: {proc.stderr.strip()[-800:]}")
    (target / "node_modules" / ".installed").touch()
    return target
