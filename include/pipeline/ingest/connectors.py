"""What a connector's venv needs so that it never reaches the internet at run time.

source-s3 (airbyte-cdk's file-based sources) imports its `unstructured` document parser at
start, and that module calls `nltk.download()` for three tokenizer packages when it cannot find
them: on a machine with no internet that is a DNS failure per package on every start, and on a
slow resolver a stall. Our streams are Parquet/JSONL and never use that parser, so setup puts
empty placeholders of those packages where nltk looks first inside the venv (`<venv>/nltk_data`,
on nltk's default path for that interpreter): no environment variable to pass, no download.

The same import starts `unstructured`, which sends a telemetry request unless
SCARF_NO_ANALYTICS=true (its check wants the string "true": DO_NOT_TRACK=1 does not stop it).
A `.pth` file in the venv sets that, and the Hugging Face offline switches, for every process
of that interpreter, whoever starts it (PyAirbyte, `make catalogs`, a benchmark).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

# nltk resources airbyte-cdk's unstructured_parser.py looks up at import (then downloads if missing)
NLTK_PLACEHOLDERS = (
    "tokenizers/punkt.zip",
    "tokenizers/punkt_tab.zip",
    "tokenizers/averaged_perceptron_tagger_eng.zip",  # sic: airbyte-cdk looks under tokenizers/
)


OFFLINE_ENV = {"SCARF_NO_ANALYTICS": "true", "DO_NOT_TRACK": "true", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
PTH_NAME = "zz_stack_offline.pth"


def prepare_offline(venv: Path) -> list[Path]:
    """Make a connector venv offline-safe (see above); return the files written."""
    written = []
    site_packages = sorted(venv.glob("lib/python*/site-packages"))
    if site_packages:
        pth = site_packages[0] / PTH_NAME
        line = "import os; " + "; ".join(f"os.environ.setdefault({k!r}, {v!r})" for k, v in OFFLINE_ENV.items())
        if not pth.exists() or pth.read_text().strip() != line:
            pth.write_text(line + "\n")
            written.append(pth)
    if not any(venv.glob("lib/python*/site-packages/nltk")):
        return written
    for resource in NLTK_PLACEHOLDERS:
        path = venv / "nltk_data" / resource
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as archive:  # a valid, empty archive: found, never used
            archive.writestr("README", "placeholder: this stack reads no documents with nltk\n")
        written.append(path)
    return written
