"""Where things live: the shipped model files and the per-user folders.

Tests point ``DEVISE_APP_DATA_DIR`` / ``DEVISE_APP_CACHE_DIR`` / ``DEVISE_APP_CONFIG_DIR``
at temporary folders so they never touch a real user's files.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "devise-app"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """The shipped model files; ``DEVISE_APP_MODELS_DIR`` overrides."""
    override = os.environ.get("DEVISE_APP_MODELS_DIR")
    return Path(override) if override else PROJECT_ROOT / "models"


def _user_dir(env_var: str, kind: str) -> Path:
    override = os.environ.get(env_var)
    if override:
        return Path(override)
    import platformdirs

    getter = {"data": platformdirs.user_data_dir, "cache": platformdirs.user_cache_dir,
              "config": platformdirs.user_config_dir}[kind]
    return Path(getter(APP_NAME, appauthor=False))


def data_dir() -> Path:
    return _user_dir("DEVISE_APP_DATA_DIR", "data")


def cache_dir() -> Path:
    return _user_dir("DEVISE_APP_CACHE_DIR", "cache")


def config_dir() -> Path:
    return _user_dir("DEVISE_APP_CONFIG_DIR", "config")


def default_library_dir() -> Path:
    return data_dir() / "library"
