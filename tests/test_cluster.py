"""The Ray engine (``devise_app.engine.cluster``) against the plain indexer, on a real
local Ray with 2 CPUs and the real model on scikit-image's photos.

- The same library as a plain run: catalog rows (ids included), vectors, the top
  10 of 20 queries, the summary; and again after moves, deletions, touches and
  changes, so the incremental rules are the plain indexer's; and in a library
  with a learned head, whose model actors project through it.
- A model worker SIGKILLed for real in the middle (``DEVISE_APP_RAY_KILL_WORKER``)
  costs only its batch: it is embedded again, nothing else is.
- The command: Ctrl+C (SIGINT to the whole process group, as a terminal sends it)
  and a SIGKILL of the whole run each keep what was committed, and the next run
  finishes the library, which is then the plain one.
- Privacy: strace records every bind and connect of a local run, Ray's own
  processes included, and none is to an address other than the loopback one.

Every test here starts or uses a local Ray (seconds), so all are marked slow.
Without Ray (the ``cluster`` extra) they are skipped, and one test checks the
command's message.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import skimage
from PIL import Image

from devise_app.bench.cluster import differences, library_contents, summary_facts, top_hits
from devise_app.engine import cluster

SKIMAGE_PHOTOS = Path(skimage.__file__).parent / "data"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
needs_ray = pytest.mark.skipif(not cluster.ray_available(), reason="Ray is not installed (the cluster extra)")
LOOPBACK = re.compile(r'"(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)"')
# Ray warns about its own deprecated settings from inside ray.init and Ray Data
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
INET_CALL = re.compile(r"\b(bind|connect|sendto|sendmsg)\(.*AF_INET6?\b")


def _photos(folder: Path, mirrored: bool = False) -> Path:
    """Every photo scikit-image ships (about 30, some greyscale or odd), a broken file
    and a byte-for-byte copy of one photo; with ``mirrored``, a mirrored JPEG of each
    too (four batches of the CPU actors' 16, for the runs stopped in the middle)."""
    folder.mkdir(parents=True)
    for path in sorted(SKIMAGE_PHOTOS.iterdir()):
        if path.suffix.lower() in {".png", ".jpg", ".gif", ".tif"}:
            shutil.copyfile(path, folder / path.name)
            if mirrored and path.suffix.lower() in {".png", ".jpg"}:
                with Image.open(path) as photo:
                    mirror = photo.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                    mirror.save(folder / f"{path.stem}-mirrored.jpg", quality=90)
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    shutil.copyfile(SKIMAGE_PHOTOS / "coffee.png", folder / "coffee-copy.png")
    return folder


def _index(progress: Iterator[Any]) -> Any:
    last = deque(progress, maxlen=1)[0]
    assert last.finished
    return last.summary


@pytest.fixture(scope="module")
def local_ray() -> Iterator[cluster.RaySession]:
    """One local Ray of 2 CPUs for the in-process tests (each CLI test starts its own)."""
    if not cluster.ray_available():
        pytest.skip("Ray is not installed (the cluster extra)")
    session = cluster.start_local(cluster.RayOptions(local_cpus=2))
    yield session
    session.close()


def _plain_and_ray(tmp_path: Path, folder: Path, encoder: Any, vocabulary: Any, **options: Any) -> Any:
    """Index ``folder`` into tmp_path/plain and (with the Ray engine) tmp_path/ray;
    assert the two libraries and summaries agree; the Ray run's summary."""
    from devise_app.engine.search import Library

    with Library(tmp_path / "plain", encoder=encoder, vocabulary=vocabulary) as plain:
        plain_summary = _index(plain.index([folder]))
        plain_hits = top_hits(plain)
    with Library(tmp_path / "ray", encoder=encoder, vocabulary=vocabulary) as library:
        ray_summary = _index(cluster.index_on_ray(library, [folder], cluster.RayOptions(**options)))
        assert top_hits(library) == plain_hits
    assert summary_facts(ray_summary) == summary_facts(plain_summary)
    assert differences(library_contents(tmp_path / "ray"), library_contents(tmp_path / "plain")) == []
    return ray_summary


@pytest.mark.slow
@needs_ray
def test_the_same_library_as_a_plain_run_then_the_same_increments(
    tmp_path: Path, local_ray: cluster.RaySession, encoder: Any, vocabulary: Any
) -> None:
    folder = _photos(tmp_path / "photos")
    first = _plain_and_ray(tmp_path, folder, encoder, vocabulary)
    assert first.indexed >= 20
    assert ("broken.jpg", "not a recognised image format") in {(i.path.name, i.reason) for i in first.skipped}

    (folder / "moved").mkdir()
    (folder / "chelsea.png").rename(folder / "moved" / "cat.png")  # moved: not embedded again
    (folder / "rocket.jpg").unlink()  # deleted
    os.utime(folder / "astronaut.png", ns=(1, 10**18))  # touched: same bytes, new mtime
    Image.open(SKIMAGE_PHOTOS / "coffee.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        folder / "coffee.png"
    )  # changed: new bytes, embedded again
    shutil.copyfile(SKIMAGE_PHOTOS / "horse.png", folder / "horse-again.png")  # new, bytes already known

    second = _plain_and_ray(tmp_path, folder, encoder, vocabulary)
    assert (second.moved, second.removed, second.indexed) == (1, 1, 2)
    assert second.unchanged == first.indexed - 3


@pytest.mark.slow
@needs_ray
def test_a_killed_model_worker_costs_only_its_batch(
    tmp_path: Path,
    local_ray: cluster.RaySession,
    encoder: Any,
    vocabulary: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setenv(cluster.KILL_VARIABLE, os.fspath(faults))
    folder = _photos(tmp_path / "photos")

    summary = _plain_and_ray(tmp_path, folder, encoder, vocabulary, model_batch=8, model_workers=1)

    killed = int((faults / "killed").read_text())  # the batch in the worker's hands when it died
    journal = [line.split() for line in (faults / "embedded").read_text().splitlines()]
    assert killed > 0
    assert sum(int(count) for _, count in journal) == summary.indexed + killed  # that batch twice, no more
    assert len({pid for pid, _ in journal}) == 2  # the worker was replaced


@pytest.mark.slow
@needs_ray
def test_new_photos_go_through_the_librarys_learned_head(
    tmp_path: Path, local_ray: cluster.RaySession, encoder: Any, vocabulary: Any
) -> None:
    from devise_app.engine import labels
    from devise_app.engine.search import Library

    first, later = tmp_path / "first", tmp_path / "later"
    first.mkdir()
    for name in ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"):
        shutil.copyfile(SKIMAGE_PHOTOS / name, first / name)
    _photos(later)
    with Library(tmp_path / "plain", encoder=encoder, vocabulary=vocabulary) as plain:
        _index(plain.index([first]))
        plain.add_label("Mine", [first / "chelsea.png", first / "coffee.png"])
        deque(plain.learn(), maxlen=1)
    assert labels.head_path(tmp_path / "plain").exists()
    shutil.copytree(tmp_path / "plain", tmp_path / "ray")  # the same library, learned head and all

    with Library(tmp_path / "plain", encoder=encoder, vocabulary=vocabulary) as plain:
        _index(plain.index([later]))
    with Library(tmp_path / "ray", encoder=encoder, vocabulary=vocabulary) as library:
        _index(cluster.index_on_ray(library, [later]))
    assert differences(library_contents(tmp_path / "ray"), library_contents(tmp_path / "plain")) == []


def _cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "devise_app", *(os.fspath(arg) for arg in args)]


def _wait_for_line(process: subprocess.Popen[str], text: str) -> list[str]:
    """Lines of the process's stderr up to one that contains ``text``."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if text in line:
            return seen
    pytest.fail(f"the run ended before {text!r}: {''.join(seen)[-2000:]}")


@pytest.mark.slow
@needs_ray
def test_the_command_stops_on_ctrl_c_and_on_sigkill_then_resumes(
    tmp_path: Path, encoder: Any, vocabulary: Any
) -> None:
    from devise_app.engine.search import Library

    folder = _photos(tmp_path / "photos", mirrored=True)
    library = tmp_path / "ray"
    command = _cli("index", folder, "--library", library, "--engine", "ray")

    interrupted = subprocess.Popen(
        command, env={**os.environ, "DEVISE_APP_CRASH_TRACE": "1"}, cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    _wait_for_line(interrupted, "crash point after-commit 1")
    os.killpg(interrupted.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
    _, err = interrupted.communicate(timeout=300)
    assert interrupted.returncode == 130, err[-2000:]
    assert "interrupted; what was indexed is kept" in err

    killed = subprocess.run(
        command, env={**os.environ, "DEVISE_APP_CRASH_AT": "after-commit:1"}, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    finished = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "Done in" in finished.stdout
    indexed = int(re.search(r"indexed\s+(\d+)", finished.stdout)[1])  # type: ignore[index]
    unchanged = int(re.search(r"unchanged\s+(\d+)", finished.stdout)[1])  # type: ignore[index]
    assert indexed > 0 and unchanged > 0  # the runs before it left batches behind

    with Library(tmp_path / "plain", encoder=encoder, vocabulary=vocabulary) as plain:
        _index(plain.index([folder]))
    assert differences(library_contents(library), library_contents(tmp_path / "plain")) == []


@pytest.mark.slow
@needs_ray
@pytest.mark.skipif(sys.platform != "linux", reason="strace is Linux only")
def test_a_local_run_talks_only_to_the_loopback_address(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (scripts/setup.sh test installs it)")
    if subprocess.run([strace, "-f", "-o", os.devnull, "true"], capture_output=True).returncode != 0:
        pytest.skip("strace cannot trace here (ptrace is not permitted)")
    folder = _photos(tmp_path / "photos")
    trace = tmp_path / "ray.trace"
    done = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=bind,connect,sendto,sendmsg", "-o", trace,
         *_cli("index", folder, "--library", tmp_path / "ray", "--engine", "ray")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    calls = [line for line in trace.read_text(errors="replace").splitlines() if INET_CALL.search(line)]
    assert len(calls) > 10  # Ray's processes did talk to each other, over TCP
    assert [line for line in calls if not LOOPBACK.search(line)] == []


@pytest.mark.slow
@needs_ray
def test_bench_cluster_prints_its_table(tmp_path: Path, photo_dir: Path) -> None:
    folder = photo_dir  # photos only: the benchmark times the decoding of each
    done = subprocess.run(
        _cli("bench", "cluster", "--images", folder), cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for row in ("plain indexer", "Ray, 1 model worker ", "Ray, 2 model workers", "overhead per photo"):
        assert row in done.stdout
    assert re.search(r"Ray library = plain library .*\| same +\| same +\| yes", done.stdout), done.stdout
    assert "PROJECTION: 10M photos on 16 GPU nodes" in done.stdout


def test_ray_is_imported_only_by_a_run_that_needs_it() -> None:
    code = (
        "import sys, devise_app.cli, devise_app.engine.cluster, devise_app.bench.cluster\n"
        "devise_app.cli.build_parser().parse_args(['index', '.', '--engine', 'ray'])\n"
        "print(sorted(name for name in sys.modules if name == 'ray' or name.startswith('ray.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_without_ray_the_command_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devise_app.cli import main

    monkeypatch.setattr(cluster, "ray_available", lambda: False)
    (tmp_path / "photos").mkdir()
    folder, library = os.fspath(tmp_path / "photos"), os.fspath(tmp_path / "library")
    status = main(["index", folder, "--library", library, "--engine", "ray"])
    assert status == 1
    assert "pip install 'devise-app[cluster]'" in capsys.readouterr().err


@needs_ray
def test_an_address_nobody_answers_on_is_one_line_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from devise_app.cli import main

    with socket.socket() as unused:  # a loopback port that is free, so nobody answers there
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copyfile(SKIMAGE_PHOTOS / "coffee.png", photos / "coffee.png")
    library = os.fspath(tmp_path / "library")
    status = main(["index", os.fspath(photos), "--library", library, "--engine", "ray", "--address", address])
    assert status == 1
    assert f"cannot reach the Ray cluster at {address}" in capsys.readouterr().err


def test_address_needs_the_ray_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from devise_app.cli import main

    (tmp_path / "photos").mkdir()
    status = main(["index", os.fspath(tmp_path / "photos"), "--address", "auto"])
    assert status == 1
    assert "--address is for --engine ray" in capsys.readouterr().err
