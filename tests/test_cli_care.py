"""The library-care commands: browse, remove, exclude, rescan, duplicates and watch
(the last as a real process, waited on through the lines it prints)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devise_app.cli import main

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def library_dir(
    tmp_path: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str], shared_model: None
) -> Path:
    folder = tmp_path / "library"
    shutil.copyfile(photo_dir / "chelsea.png", photo_dir / "same-cat.png")
    (photo_dir / "sub").mkdir()
    shutil.copyfile(photo_dir / "coffee.png", photo_dir / "sub" / "coffee-again.png")
    code, _, err = run(capsys, "index", photo_dir, "--library", folder)
    assert code == 0, err
    return folder


def test_browse_and_duplicates(
    library_dir: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "browse", "--sort", "name", "--json", "--library", library_dir)
    assert code == 0
    listing = json.loads(out)
    names = [Path(photo["path"]).name for photo in listing["photos"]]
    assert names == sorted(names, key=str.lower) and len(names) == 5  # copies shown once
    assert {photo["copies"] for photo in listing["photos"]} == {1, 2}
    code, out, _ = run(capsys, "browse", "--folder", photo_dir / "sub", "--library", library_dir)
    assert code == 0 and "coffee-again.png" in out and out.count("\n") == 1

    code, out, _ = run(capsys, "duplicates", "--json", "--library", library_dir)
    groups = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [group["kind"] for group in groups] == ["exact", "exact"]
    assert sorted(Path(p["path"]).name for p in groups[0]["photos"] + groups[1]["photos"]) == [
        "chelsea.png", "coffee-again.png", "coffee.png", "same-cat.png",
    ]  # fmt: skip
    code, out, _ = run(capsys, "duplicates", "--library", library_dir)
    assert "2 identical copies:" in out


def test_search_shows_copies_once_and_takes_filters(
    library_dir: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "search", "cat", "--json", "--top", "5", "--library", library_dir)
    results = json.loads(out)["results"]
    assert code == 0 and len(results) == 5
    assert results[0]["copies"] == 2 and Path(results[0]["path"]).name in ("chelsea.png", "same-cat.png")
    assert all("copies" not in result for result in results[1:] if "coffee" not in result["path"])
    code, out, _ = run(capsys, "search", "cat", "--top", "1", "--library", library_dir)
    assert out.splitlines()[1].endswith("(2 copies)")

    code, out, _ = run(
        capsys, "search", "cat", "--json", "--folder", photo_dir / "sub", "--library", library_dir
    )
    assert code == 0 and [Path(r["path"]).name for r in json.loads(out)["results"]] == ["coffee-again.png"]
    code, _, err = run(capsys, "search", "cat", "--label", "nope", "--library", library_dir)
    assert code == 1 and err.startswith("devise-app: error: no label named 'nope'")


def test_remove_exclude_and_rescan(
    library_dir: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "exclude", photo_dir / "sub", "--library", library_dir)
    assert code == 0 and "1 photos removed" in out
    code, out, _ = run(capsys, "remove", photo_dir / "same-cat.png", "--library", library_dir)
    assert code == 0 and "removed 1 photos" in out
    code, out, _ = run(capsys, "rescan", "--library", library_dir)
    assert code == 0 and "the library holds 5 photos" in out
    code, out, _ = run(capsys, "exclude", "--library", library_dir)
    assert out.splitlines() == [str(photo_dir / "same-cat.png"), str(photo_dir / "sub")]
    code, out, _ = run(capsys, "exclude", "--undo", photo_dir / "sub", "--library", library_dir)
    code, out, _ = run(capsys, "rescan", "--library", library_dir)
    assert "the library holds 6 photos" in out
    code, _, err = run(capsys, "remove", photo_dir / "nope.png", "--library", library_dir)
    assert code == 1 and err.startswith("devise-app: error: not a photo of the library")


def test_watch_picks_up_photos_and_their_removal(tmp_path: Path, photo_dir: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devise_app",
            "watch",
            str(watched),
            "--library",
            str(tmp_path / "lib"),
            "--quiet",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        assert process.stderr.readline().startswith("watching ")  # watched from here on
        for name in sorted(os.listdir(photo_dir)):
            shutil.copyfile(photo_dir / name, watched / name)
        assert _counted(process.stdout, "indexed") == 5
        for name in os.listdir(watched):
            (watched / name).unlink()
        assert _counted(process.stdout, "removed") == 5
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0
        assert "stopped watching" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _counted(stdout: object, what: str, total: int = 5) -> int:
    """Read the watcher's run lines ("12:00:00  5 indexed, 0 moved, 0 removed, 0 skipped")
    until ``what`` adds up to ``total`` (or the process ends)."""
    count = 0
    while count < total:
        line = stdout.readline()  # type: ignore[attr-defined]
        assert line, "devise-app watch ended"
        numbers = dict((part.split()[1], int(part.split()[0])) for part in line.split("  ", 1)[1].split(", "))
        count += numbers[what]
    return count
