"""Test helpers imported as a library, and the fixtures the root conftest registers.

Plain helpers (classes, functions, constants) are imported from here by test modules; fixtures
live in the modules listed in tests/conftest.py's `pytest_plugins`, so no conftest is ever
imported as a library.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# The logical date of the session stack's first `demo` run (tests/support/stack.py).
E2E_DATE = "2026-01-05"
