"""Safety limits (issue 7): a cap on image pixels, a cap on memory per batch,
metadata that is never followed, and no network at all."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from reliability_support import decompression_bomb, distinct_photos, source_photo

from devise_app.engine import imaging, indexer
from devise_app.engine.search import Library

PROJECT_ROOT = Path(__file__).resolve().parents[2]

RunIndex = Callable[..., Any]


# -- pixels ----------------------------------------------------------------------------


def test_the_pixel_cap_is_the_apps_own_and_is_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Image.MAX_IMAGE_PIXELS == imaging.MAX_IMAGE_PIXELS  # Pillow's own limit follows it
    monkeypatch.setattr(imaging, "MAX_IMAGE_PIXELS", 100_000)
    source_photo("coffee.png").resize((400, 300)).save(tmp_path / "big.png")
    source_photo("coffee.png").resize((300, 300)).save(tmp_path / "small.png")

    with pytest.raises(imaging.ImageDecodeError, match=r"image too large \(400x300 pixels, limit 100000\)"):
        imaging.open_image(tmp_path / "big.png")
    assert imaging.open_image(tmp_path / "small.png").size == (300, 300)


def test_a_decompression_bomb_is_refused_without_allocating_it(tmp_path: Path) -> None:
    """In a fresh interpreter, so its peak memory says what refusing cost: a
    30000 x 30000 PNG would take 0.9 GB decoded and 2.7 GB as RGB."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(decompression_bomb(30_000))
    script = textwrap.dedent(
        f"""
        import resource, sys
        from devise_app.engine import imaging
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            imaging.open_image({os.fspath(bomb)!r})
        except imaging.ImageDecodeError as exc:
            print(exc)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grown // 1024)  # MiB (ru_maxrss is in KiB on Linux)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    message, grown_mib = result.stdout.splitlines()
    assert message.startswith("image too large")
    if sys.platform == "linux":
        assert int(grown_mib) < 100


# -- memory per batch ------------------------------------------------------------------


class RecordingEncoder:
    """The real encoder, recording the size of every batch it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.batch_size = 10_000  # asks for far more than the cap allows
        self.batches: list[tuple[int, int]] = []  # (images, bytes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed(self, batch: np.ndarray) -> Any:
        self.batches.append((len(batch), batch.nbytes))
        return self.inner.embed(batch)


def test_memory_per_batch_is_bounded(
    tmp_path: Path, encoder: Any, vocabulary: Any, run_index: RunIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped bound: 64 MiB of model input per batch, above what the encoder suggests.
    assert indexer.IMAGE_INPUT_BYTES == 3 * imaging.INPUT_SIZE**2 * 4
    assert indexer.max_batch_size() * indexer.IMAGE_INPUT_BYTES <= indexer.MAX_BATCH_BYTES == 64 << 20
    assert encoder.batch_size <= indexer.max_batch_size()

    # Enforced: with room for 3 photos a batch, a run asked for batches of 10000
    # embeds at most 3 at a time and holds at most 3 batches of decoded photos.
    monkeypatch.setattr(indexer, "MAX_BATCH_BYTES", 3 * indexer.IMAGE_INPUT_BYTES)
    alive = 0
    peak = 0
    lock = threading.Lock()

    def gone() -> None:
        nonlocal alive
        with lock:
            alive -= 1

    real_decode = indexer._decode

    def decode(path: str, content_hash: bytes | None) -> Any:
        nonlocal alive, peak
        loaded = real_decode(path, content_hash)
        if loaded.pixels is not None:
            with lock:
                alive += 1
                peak = max(peak, alive)
            weakref.finalize(loaded.pixels, gone)
        return loaded

    monkeypatch.setattr(indexer, "_decode", decode)
    recording = RecordingEncoder(encoder)
    folder = tmp_path / "photos"
    distinct_photos(folder, 14, side=64)

    with Library(tmp_path / "library", encoder=recording, vocabulary=vocabulary) as library:
        summary = run_index(library, [folder])

    assert summary.indexed == 14
    assert [images for images, _ in recording.batches] == [3, 3, 3, 3, 2]
    assert max(size for _, size in recording.batches) <= 3 * indexer.IMAGE_INPUT_BYTES
    assert 3 <= peak <= 3 * 3
    assert alive == 0


def test_decoding_in_threads_leaves_the_warning_filters_alone(tmp_path: Path) -> None:
    """open_image used warnings.catch_warnings() around each decode, which swaps
    the process-wide filter list: the indexer's decoder threads left filters
    behind (or dropped them). Now nothing is changed while decoding."""
    Image.new("RGB", (8, 8), "red").save(tmp_path / "small.png")
    before = list(warnings.filters)
    with ThreadPoolExecutor(8) as pool:
        for img in pool.map(lambda _: imaging.open_image(tmp_path / "small.png"), range(2000)):
            assert img.size == (8, 8)
    assert warnings.filters == before


# -- metadata is data, never followed --------------------------------------------------


_recorder: list[tuple[str, tuple[Any, ...]]] | None = None
_hook_installed = False

# Audit events of things the app must never do because of what a photo says.
FORBIDDEN_EVENTS = (
    "socket.",
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.startfile",
    "webbrowser.open",
    "urllib.Request",
    "ctypes.dlopen",
)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    recorder = _recorder
    if recorder is not None and (event == "open" or event.startswith(FORBIDDEN_EVENTS)):
        recorder.append((event, args))


@pytest.fixture
def audit_events() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Python's audit events (files opened, sockets, processes) raised while the
    test runs. An audit hook cannot be removed, so one is installed for the
    session and records only inside this fixture."""
    global _recorder, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    events: list[tuple[str, tuple[Any, ...]]] = []
    _recorder = events
    try:
        yield events
    finally:
        _recorder = None


def _xmp(secret: Path) -> bytes:
    """An XMP packet with an external entity and links to a local file and a URL."""
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<!DOCTYPE x:xmpmeta [<!ENTITY secret SYSTEM "file://{secret}">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="&secret;"
     xmp:BaseURL="http://127.0.0.1:9/photos/" xmp:Label="{secret}">
   <xmp:Thumbnails><rdf:Alt><rdf:li rdf:resource="file://{secret}"/></rdf:Alt></xmp:Thumbnails>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()


def _photos_with_hostile_metadata(folder: Path, secret: Path) -> list[Path]:
    folder.mkdir(parents=True)
    cat = source_photo("chelsea.png")
    exif = Image.Exif()
    exif[0x010E] = f"file://{secret}"  # ImageDescription
    exif[0x013B] = os.fspath(secret)  # Artist
    exif[0x8298] = "http://127.0.0.1:9/licence"  # Copyright
    exif[0x9C9C] = "$(touch /tmp/pwned); `reboot`".encode("utf-16-le")  # XPComment
    jpeg = folder / "exif-and-xmp.jpg"
    cat.save(jpeg, exif=exif.tobytes(), xmp=_xmp(secret), icc_profile=b"\x00" * 128)
    with Image.open(jpeg) as saved:  # the XMP packet really is in the file
        assert b"ENTITY secret" in saved.info["xmp"]

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", _xmp(secret).decode())
    info.add_text("Source", "http://127.0.0.1:9/original.png")
    info.add_text("Comment", f"see {secret}")
    png = folder / "itxt.png"
    cat.save(png, pnginfo=info, exif=exif.tobytes())
    return [jpeg, png]


def test_metadata_is_never_followed(
    tmp_path: Path, library: Any, run_index: RunIndex, audit_events: list[tuple[str, tuple[Any, ...]]]
) -> None:
    """EXIF, XMP (with an external entity) and PNG text naming a local file and a
    URL: the file is never opened, no socket, no process; the photos are indexed
    and described."""
    secret = tmp_path / "secret" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("top secret")
    photos = _photos_with_hostile_metadata(tmp_path / "photos", secret)
    del audit_events[:]

    summary = run_index(library, [tmp_path / "photos"])
    for photo in photos:
        library.describe(photo, top=3)
        library.similar(photo, top=3)

    assert summary.indexed == 2 and summary.skipped == ()
    opened = [os.fspath(args[0]) for event, args in audit_events if event == "open" and args[0] is not None]
    assert {os.fspath(photo) for photo in photos} <= set(opened)  # the hook sees what is opened
    assert not [path for path in opened if "secret" in path or "127.0.0.1" in path]
    assert [event for event, _ in audit_events if event != "open"] == []
    assert not Path("/tmp/pwned").exists()


# -- no network ------------------------------------------------------------------------


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise OSError("the network is off in this test")


def test_indexing_and_searching_need_no_network(
    tmp_path: Path,
    photo_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_index: RunIndex,
    audit_events: list[tuple[str, tuple[Any, ...]]],
) -> None:
    """The model and vocabulary loaded from scratch, indexing, search, similar,
    describe and labels, with socket creation made to fail."""
    for name in ("socket", "create_connection", "socketpair", "getaddrinfo", "create_server"):
        monkeypatch.setattr(socket, name, _no_network)
    with Library(tmp_path / "library") as library:  # loads its own model and vocabulary
        summary = run_index(library, [photo_dir])
        assert summary.indexed == 5
        assert library.search("cat", top=1)[0].path.name == "chelsea.png"
        assert library.similar(photo_dir / "coffee.png", top=1)
        assert library.describe(photo_dir / "rocket.jpg", top=1)
        library.add_label("Space", [photo_dir / "rocket.jpg"])
        assert [hit.path.name for hit in library.search("label:Space")] == ["rocket.jpg"]

    assert [event for event, _ in audit_events if event.startswith("socket.")] == []


_CHILD = """
import os, sys
def hook(event, args):
    if event.startswith("socket."):
        os.write(2, f"network used: {event} {args!r}\\n".encode())
        os._exit(99)
sys.addaudithook(hook)
from devise_app.cli import main
folder, library = sys.argv[1:3]
for argv in (["index", folder, "--library", library],
             ["search", "cat", "--json", "--library", library],
             ["similar", os.path.join(folder, "chelsea.png"), "--library", library],
             ["describe", os.path.join(folder, "chelsea.png")],
             ["label", "add", "Pet", os.path.join(folder, "chelsea.png"), "--library", library]):
    code = main(argv)
    if code:
        sys.exit(code)
"""


def test_the_cli_opens_no_socket(tmp_path: Path, photo_dir: Path) -> None:
    """The real CLI in a fresh interpreter whose audit hook kills it at the first
    socket event; in an empty network namespace too where the OS allows it."""
    prefix: list[str] = []
    unshare = shutil.which("unshare")
    if unshare is not None and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        prefix = [unshare, "-n"]
    result = subprocess.run(
        [*prefix, sys.executable, "-c", _CHILD, os.fspath(photo_dir), os.fspath(tmp_path / "library")],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "network used" not in result.stderr
    assert "chelsea.png" in result.stdout


def test_the_pixel_budget_admits_what_fits_and_one_oversized_photo_alone() -> None:
    budget = imaging.PixelBudget(100)
    assert budget.try_acquire(60)
    assert not budget.try_acquire(60)  # 120 > 100: it waits
    assert budget.try_acquire(40)
    budget.release(60)
    budget.release(40)
    assert budget.try_acquire(500)  # larger than the whole budget, but alone
    assert not budget.try_acquire(1)
    budget.release(500)


def test_decoded_pixels_in_flight_stay_within_one_process_wide_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many decoder threads run, the pixels being decoded at once stay within
    the budget (it was per thread: 0.8 GB each on 120-megapixel photos)."""

    class Recorded(imaging.PixelBudget):
        def __init__(self, pixels: int) -> None:
            super().__init__(pixels)
            self.most = 0
            self.holds = 0

        def acquire(self, pixels: int) -> None:
            super().acquire(pixels)
            with self._changed:
                self.holds += 1
                self.most = max(self.most, self._in_use)

    size = (1600, 1200)
    paths = []
    for i in range(12):
        path = tmp_path / f"big{i}.png"
        source_photo("chelsea.png").resize(size).save(path)
        paths.append(path)
    budget = Recorded(2 * size[0] * size[1])
    monkeypatch.setattr(imaging, "DECODE_BUDGET", budget)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(imaging.load_model_input, paths))
    assert budget.holds == len(paths)
    assert budget.most <= budget.pixels
