"""Helpers every benchmark shares: where the evaluation photos are."""

from __future__ import annotations

import os
from pathlib import Path

DATASETS_ENV = "DEVISE_APP_DATASETS"


def dataset_dir(name: str) -> Path:
    """``shared/datasets/NAME``: under ``$DEVISE_APP_DATASETS`` when set, else the
    first ``shared/datasets`` beside the working folder or one of its parents (a
    checkout sits next to ``shared/``). The path may not exist; callers say so."""
    override = os.environ.get(DATASETS_ENV)
    if override:
        return Path(override) / name
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "datasets" / name
        if candidate.is_dir():
            return candidate
    return here.parent / "shared" / "datasets" / name
