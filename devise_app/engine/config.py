"""Where things live: the shipped model files and the per-user folders.

Tests point ``DEVISE_APP_DATA_DIR`` / ``DEVISE_APP_CACHE_DIR`` / ``DEVISE_APP_CONFIG_DIR``
at temporary folders so they never touch a real user's files.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

APP_NAME = "devise-app"


def _package_folder(package: str) -> Path:
    """A folder shipped as package data (``models/`` -> ``devise_app.models``).

    The wheel installs them as plain folders, and an editable install maps them
    to the checkout's top-level folders; ONNX Runtime needs a real path either way.
    """
    folder = resources.files(package)
    path = Path(str(folder))
    if not path.is_dir():  # a zipped install; nothing this project builds
        raise FileNotFoundError(f"{package} is not a folder on disk ({folder})")
    return path


def models_dir() -> Path:
    """The shipped model files; ``DEVISE_APP_MODELS_DIR`` overrides."""
    override = os.environ.get("DEVISE_APP_MODELS_DIR")
    return Path(override) if override else _package_folder("devise_app.models")


def repair_hint() -> str:
    """What this user can do about missing or damaged shipped files: a source
    checkout has its setup script; an installed package is reinstalled."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "scripts" / "setup.sh").is_file() and (checkout / "models").is_dir():
        return f"run {checkout / 'scripts' / 'setup.sh'}"
    return "reinstall devise-app (pip install --force-reinstall devise-app)"


def resources_dir() -> Path:
    """The shipped icons and style sheet."""
    return _package_folder("devise_app.resources")


def _user_dir(env_var: str, kind: str) -> Path:
    override = os.environ.get(env_var)
    if override:
        return Path(override)
    import platformdirs

    getter = {
        "data": platformdirs.user_data_dir,
        "cache": platformdirs.user_cache_dir,
        "config": platformdirs.user_config_dir,
    }[kind]
    return Path(getter(APP_NAME, appauthor=False))


def data_dir() -> Path:
    return _user_dir("DEVISE_APP_DATA_DIR", "data")


def cache_dir() -> Path:
    return _user_dir("DEVISE_APP_CACHE_DIR", "cache")


def config_dir() -> Path:
    return _user_dir("DEVISE_APP_CONFIG_DIR", "config")


def default_library_dir() -> Path:
    return data_dir() / "library"
