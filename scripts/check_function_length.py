"""Fail when a function in the package is longer than the limit (60 lines, decorators excluded).

Long functions are where zkfl's seams got hard to change; ``make lint`` keeps them short.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("circuits", "prover", "contracts", "middleware", "aggregator", "dashboard", "zkfl")
LIMIT = 60


def long_functions(limit: int = LIMIT) -> list[str]:
    found = []
    for folder in PACKAGE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > limit:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} is {length} lines")
    return found


if __name__ == "__main__":
    problems = long_functions()
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} function(s) longer than {LIMIT} lines: split them", file=sys.stderr)
    sys.exit(1 if problems else 0)
