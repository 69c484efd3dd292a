"""ezkl, imported in one place.

ezkl 23.0.5's type stubs mark arguments that have defaults at run time as required,
and omit PyRunArgs' settable fields, so the module is typed as Any here. Its Python
API changes between releases: the version is pinned in pyproject.toml, and every
call zkfl makes goes through this module's importers.
"""

from __future__ import annotations

import importlib
from typing import Any

ezkl: Any = importlib.import_module("ezkl")
