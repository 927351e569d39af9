"""`python -m include.pipeline.cli <command>`: see the package docstring."""

from __future__ import annotations

import sys

from include.pipeline.cli import main

sys.exit(main())
