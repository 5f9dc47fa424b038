"""The wheel is a working app: built from this checkout, installed into a new
virtual environment outside it, and run from there with no network.

The new environment borrows the already installed dependencies (numpy, ONNX
Runtime, Qt, ...) through a path entry, so the test needs no download; the app
itself, its model files and its icons come from the wheel alone, which is the
point (the first round's wheel held only the code). The commands run in a
network namespace with no interfaces where ``unshare`` allows it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import skimage

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SKIMAGE_PHOTOS = Path(skimage.__file__).parent / "data"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout"),
]


def _offline_prefix() -> list[str]:
    """``unshare -rn`` (a private network namespace: no network at all) when it works here."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv outside the checkout with the wheel of this checkout installed in it."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, "."],
        cwd=PROJECT_ROOT, check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("devise_app-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("devise_app/models/devise.onnx", "devise_app/resources/style.qss"):
        assert shipped in names, f"the wheel lacks {shipped}"
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # the dependencies, not the app: a path entry (unlike a site folder) runs no
    # .pth files, so the checkout's editable-install finder stays out
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
    )
    return venv


def _run(venv: Path, tmp_path: Path, *argv: str | Path) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DEVISE_APP_", "PYTHON"))}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        QT_QPA_PLATFORM="offscreen",
    )
    done = subprocess.run(
        [*_offline_prefix(), *[str(arg) for arg in argv]],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_installed_wheel_indexes_searches_and_describes(installed: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        shutil.copy(SKIMAGE_PHOTOS / name, photos / name)
    app = installed / "bin" / "devise-app"
    library = tmp_path / "library"

    where = _run(
        installed,
        tmp_path,
        installed / "bin" / "python",
        "-c",
        "import devise_app; print(devise_app.__file__)",
    )
    assert Path(where.strip()).is_relative_to(installed), "the app must come from the wheel, not the checkout"

    assert "the library holds 3 photos" in _run(
        installed, tmp_path, app, "index", photos, "--library", library
    )
    found = _run(installed, tmp_path, app, "search", "espresso", "--top", "1", "--library", library)
    assert "coffee.png" in found
    assert "missile" in _run(installed, tmp_path, app, "describe", photos / "rocket.jpg")


def test_the_installed_wheel_has_its_icons_and_style(installed: Path, tmp_path: Path) -> None:
    probe = (
        "from PySide6.QtWidgets import QApplication; app = QApplication([]); "
        "from devise_app.gui import icons; "
        "assert icons.style_sheet(), 'no style sheet'; "
        "assert not icons.icon('search').isNull(), 'no search icon'; "
        "print(icons.resources_dir())"
    )
    where = _run(installed, tmp_path, installed / "bin" / "python", "-c", probe)
    assert Path(where.strip()).is_relative_to(installed)
