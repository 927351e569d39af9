"""The ingest stage: connections.yaml, the embedded engine (PyAirbyte) and the Airbyte server engine.

The Airbyte server code lived in a package named `platform` until it was renamed `airbyte_server`:
a folder of that name shadowed the standard library's `platform` for any script run from here
(the embedded runner needed `python -P` for it). Airflow stores the class path of a deferred
task's trigger in its database, so a trigger serialized before the rename still names
`include.pipeline.ingest.platform.operator.PlatformSyncTrigger`. That path is kept importable by
an import hook rather than by a file: no `platform` folder or module exists to shadow anything,
and nothing is imported until the old path is asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

# old module path -> the module that now holds what it held (only what serialized state names)
LEGACY_MODULES = {
    f"{__name__}.platform": f"{__name__}.airbyte_server",
    f"{__name__}.platform.operator": f"{__name__}.airbyte_server.triggers",
}


class _LegacyModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import an old module path as a module that re-exports the new module's names."""

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LEGACY_MODULES:
            return None
        is_package = any(other.startswith(fullname + ".") for other in LEGACY_MODULES)
        return importlib.util.spec_from_loader(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # a fresh module: the new one keeps its own name and spec

    def exec_module(self, module: types.ModuleType) -> None:
        target = importlib.import_module(LEGACY_MODULES[module.__name__])
        module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})
        module.__doc__ = f"Old path of {target.__name__} (kept for serialized triggers)."


if not any(isinstance(finder, _LegacyModules) for finder in sys.meta_path):
    sys.meta_path.append(_LegacyModules())
