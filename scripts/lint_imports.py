"""Run the import contracts of pyproject.toml ([tool.importlinter]) over the zkfl package.

The repository keeps one folder per layer at its root and maps them into ``zkfl`` with
setuptools' ``package-dir``; import-linter finds modules by walking the root package's
folder, so it would not see ``zkfl.prover`` & co. This lays the packages out as they are
installed (a copy of the sources in a temporary folder) and lints that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lay_out(target: Path) -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders: dict[str, str] = setuptools["package-dir"]
    for package in setuptools["packages"]:
        source = ROOT / folders.get(package, package.replace(".", "/"))
        destination = target.joinpath(*package.split("."))
        destination.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            shutil.copy2(module, destination / module.name)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="zkfl-lint-imports-") as tmp:
        lay_out(Path(tmp))
        env = dict(os.environ, PYTHONPATH=tmp)
        linter = Path(sys.executable).with_name("lint-imports")
        return subprocess.call([str(linter), str(ROOT / "pyproject.toml")], env=env, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
