"""Entry point: `python -m include.airbyte_runtime` from the repository, or this file run by path.

Airflow's side (include/pipeline/ingest/embedded.py) runs this file by its path with `-P`, in
.venv-airbyte: `-P` keeps the file's folder off sys.path, and the repository root is appended
below, after the venv's own paths, so no folder of the repository can shadow a library module.
"""

from __future__ import annotations

import os
import sys

if not __package__:  # run by path: make `include.airbyte_runtime` importable, libraries first
    sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from include.airbyte_runtime.main import run  # noqa: E402 - after the path is set

run()
