"""The devise-app command: its output contracts and its one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from devise_app import __version__, cli
from devise_app.cli import main
from devise_app.engine.indexer import IndexProgress

PROJECT_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("shared_model")


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("devise-app: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def library_dir(tmp_path: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    folder = tmp_path / "library"
    code, _, err = run(capsys, "index", photo_dir, "--library", folder)
    assert code == 0, err
    return folder


def test_index_prints_a_summary(tmp_path: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (photo_dir / "broken.jpg").write_bytes(b"not a jpeg")
    code, out, err = run(capsys, "index", photo_dir, "--library", tmp_path / "lib")
    assert code == 0  # skipped files do not make the run fail
    assert "Traceback" not in err
    assert "the library holds 5 photos" in out
    counts = dict(line.split() for line in out.splitlines()[1:6])
    assert counts == {"indexed": "5", "unchanged": "0", "moved": "0", "removed": "0", "skipped": "1"}
    assert "not a recognised image format" in out
    assert f"{photo_dir / 'broken.jpg'}: not a recognised image format" in out

    code, out, _ = run(capsys, "index", photo_dir, "--library", tmp_path / "lib")
    assert code == 0
    assert "unchanged        5" in out


def test_search_json_contract(library_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "search", "cat", "qqxyzzy", "espresso", "--json", "--library", library_dir, "--top", "3"
    )
    assert code == 1  # one query could not be answered
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["query"] for line in lines] == ["cat", "qqxyzzy", "espresso"]
    cat, bad, espresso = lines
    assert set(cat) == {"query", "results", "good_matches"}
    assert cat["good_matches"] == 1  # one cat among five photos; the others follow as weaker matches
    assert len(cat["results"]) == 3
    assert all(set(result) == {"path", "score"} for result in cat["results"])
    assert Path(cat["results"][0]["path"]).name == "chelsea.png"
    assert Path(cat["results"][0]["path"]).is_absolute()
    assert isinstance(cat["results"][0]["score"], float)
    assert set(bad) == {"query", "error"}
    assert "qqxyzzy" in bad["error"]
    assert Path(espresso["results"][0]["path"]).name == "coffee.png"
    assert err == ""

    code, out, _ = run(capsys, "search", "cat", "--json", "--library", library_dir)
    assert code == 0
    assert len(json.loads(out)["results"]) == 5  # fewer photos than --top's default 20


def test_a_sentence_with_an_unknown_word_is_answered_and_says_what_was_left_out(
    library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "A cup of espreso, and a qqxyzzy on the table."
    code, out, err = run(capsys, "search", query, "--json", "--library", library_dir, "--top", "2")
    assert code == 0, err
    (answer,) = [json.loads(line) for line in out.splitlines()]
    assert Path(answer["results"][0]["path"]).name == "coffee.png"
    espreso, qqxyzzy = answer["ignored"]  # every word the model does not know
    assert espreso == {"word": "espreso", "suggestions": ["espresso"], "read_as": "espresso"}  # a typo
    assert qqxyzzy["word"] == "qqxyzzy" and "read_as" not in qqxyzzy  # nothing near it: left out
    code, out, err = run(capsys, "search", query, "--library", library_dir, "--top", "2")
    assert code == 0
    results = [line for line in out.splitlines()[1:] if not line.strip().startswith("(")]
    assert "coffee.png" in results[0]
    assert "unknown word 'espreso' read as 'espresso'" in err
    assert "unknown word 'qqxyzzy' left out" in err


def test_arithmetic_says_what_it_landed_near_and_no_good_matches_says_so(
    library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", "king - man + woman", "--json", "--library", library_dir)
    assert code == 0, err
    answer = json.loads(out)
    assert "queen" in answer["nearest_words"]
    assert len(answer["results"]) == 5  # still every photo, as scripts expect
    code, out, _ = run(capsys, "search", "giraffe", "--library", library_dir)
    assert code == 0
    assert out.splitlines()[1] == "  (no good matches; the nearest photos:)"


def test_search_says_what_a_query_asked_not_to_see(
    library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", "a room with no cat", "--json", "--library", library_dir)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["without"] == ["cat"] and len(answer["results"]) == 5
    code, out, _ = run(capsys, "search", "a room with no cat", "--library", library_dir)
    assert out.splitlines()[0] == "a room with no cat  (ranked lower: cat)"


def test_the_issue_sentence_and_a_label_named_cpp(
    library_dir: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "search",
        "A room with chairs, a table, and a woman in it.",
        "--json",
        "--library",
        library_dir,
    )
    assert code == 0, err
    assert json.loads(out)["results"]
    assert run(capsys, "label", "add", "C++", photo_dir / "rocket.jpg", "--library", library_dir)[0] == 0
    code, out, err = run(capsys, "search", "C++", "--json", "--top", "1", "--library", library_dir)
    assert code == 0, err
    assert Path(json.loads(out)["results"][0]["path"]).name == "rocket.jpg"


def test_search_table(library_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "search", "missile", "zzqqx", "--library", library_dir, "--top", "2")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "missile"
    assert lines[1].split()[1].endswith("rocket.jpg")
    assert lines[2] == "  (weaker matches:)"  # where the good matches end
    assert len(lines) == 4
    assert_one_line_error(err, "zzqqx")


def test_label_command_and_label_search(
    library_dir: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = ("--library", library_dir)
    assert run(capsys, "label", "add", "Coffee time", photo_dir / "coffee.png", *lib)[0] == 0
    code, out, _ = run(capsys, "label", "list", *lib)
    assert out.split() == ["1", "Coffee", "time"]
    code, out, _ = run(capsys, "search", 'label:"coffee time"', "--json", *lib)
    assert json.loads(out)["results"] == [{"path": str(photo_dir / "coffee.png"), "score": 1.0}]
    code, _, err = run(capsys, "label", "add", "Coffee time", *lib)
    assert code == 2
    code, _, err = run(capsys, "label", "add", "X", photo_dir / "nope.png", *lib)
    assert code == 1
    assert_one_line_error(err, "not a photo of the library")


def test_options_may_come_anywhere_among_a_commands_arguments(
    library_dir: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = ("--library", str(library_dir))
    assert run(capsys, "label", "add", *lib, "Mom & Dad", photo_dir / "coffee.png")[0] == 0
    assert run(capsys, "label", *lib, "add", "Mom & Dad", photo_dir / "rocket.jpg")[0] == 0
    code, out, err = run(capsys, "search", "missile", "--top", "1", "label:Mom & Dad", "--json", *lib)
    assert code == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["query"] for a in answers] == ["missile", "label:Mom & Dad"]
    assert len(answers[1]["results"]) == 1
    code, out, err = run(capsys, "search", *lib, "--json", "--", "-missile")
    assert json.loads(out)["query"] == "-missile"


def test_similar_and_describe(library_dir: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "similar", photo_dir / "chelsea.png", "--json", "--top", "3", "--library", library_dir
    )
    assert code == 0
    result = json.loads(out)
    assert result["photo"] == str(photo_dir / "chelsea.png")
    assert len(result["results"]) == 3
    assert all(Path(hit["path"]).name != "chelsea.png" for hit in result["results"])

    code, out, _ = run(capsys, "describe", photo_dir / "coffee.png", "--json", "--top", "4")
    assert code == 0
    words = json.loads(out)["words"]
    assert len(words) == 4
    assert words[0]["word"] == "espresso"
    code, out, _ = run(capsys, "describe", photo_dir / "rocket.jpg")
    assert "missile" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["search", "cat", "--library", "{tmp}/none"], "no photo library in"),
        (["similar", "{photos}/chelsea.png", "--library", "{tmp}/none"], "no photo library in"),
        (["index", "{tmp}/no-such-folder", "--library", "{tmp}/lib"], "no such folder"),
        (["describe", "{tmp}/missing.jpg"], "no such photo"),
        (["describe", "{tmp}/text.jpg"], "not a recognised image format"),
        (["search", "cat", "--library", "{tmp}/damaged"], "cannot read the photo catalog"),
    ],
)
def test_user_errors_are_one_line(
    argv: list[str], fragment: str, tmp_path: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "catalog.sqlite").write_bytes(b"garbage" * 1000)
    argv = [arg.format(tmp=tmp_path, photos=photo_dir) for arg in argv]
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert out == ""
    assert_one_line_error(err, fragment)


def test_model_file_errors_are_one_line(
    tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devise_app.engine.model import ModelFileError

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ModelFileError("model file models/devise.onnx is missing")

    monkeypatch.setattr("devise_app.engine.model.ImageEncoder", broken)
    code, _, err = run(capsys, "describe", photo_dir / "coffee.png")
    assert code == 1
    assert_one_line_error(err, "devise.onnx is missing")

    monkeypatch.setenv("DEVISE_APP_MODELS_DIR", str(tmp_path / "no-models"))
    code, _, err = run(capsys, "index", photo_dir, "--library", tmp_path / "lib")
    assert code == 1
    assert_one_line_error(err, "model file")


def test_interrupt_is_one_line(
    library_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("devise_app.engine.search.Library.find", interrupted)
    code, _, err = run(capsys, "search", "cat", "--library", library_dir)
    assert code == 130
    assert err.strip() == "devise-app: interrupted"


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["search"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["search", "cat", "--top", "0"])
    assert "positive whole number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "cat", "--top", "33554432"])
    err = capsys.readouterr().err
    assert "at most 100000" in err and "Traceback" not in err


def test_names_with_control_characters_reach_the_terminal_escaped(
    tmp_path: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file named with a terminal escape sequence is shown escaped, never raw."""
    hostile = photo_dir / "red\x1b[31mflag\x07.png"
    (photo_dir / "coffee.png").rename(hostile)
    (photo_dir / "broken\x1b]0;owned\x07.jpg").write_bytes(b"not a jpeg")
    library = tmp_path / "lib"
    code, out, err = run(capsys, "index", photo_dir, "--library", library)
    assert code == 0, err
    code, found, _ = run(capsys, "search", "espresso", "--top", "1", "--library", library)
    assert code == 0
    for text in (out, err, found):
        assert "\x1b" not in text and "\x07" not in text
    assert "red\\x1b[31mflag\\x07.png" in found
    assert "broken\\x1b]0;owned\\x07.jpg" in out


@pytest.mark.parametrize(
    "command", [[], ["index"], ["search"], ["similar"], ["describe"], ["label"], ["bench"]]
)
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: devise-app" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"devise-app {__version__}"


def test_no_arguments_opens_the_gui(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []
    fake = types.ModuleType("devise_app.gui.app")
    fake.main = lambda: opened.append(True) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "devise_app.gui.app", fake)
    assert main([]) == 0
    assert opened == [True]


@pytest.mark.parametrize(("what", "module"), [("index", "bench.index"), ("quality", "bench.quality")])
def test_bench_dispatch(what: str, module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    fake = types.ModuleType(f"devise_app.{module}")
    fake.main = lambda images: calls.append(images) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"devise_app.{module}", fake)
    assert main(["bench", what, "--images", str(tmp_path)]) == 7
    assert main(["bench", what]) == 7
    assert calls == [tmp_path, None]


def test_progress_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    printer = cli._ProgressPrinter(stream)
    printer.update(IndexProgress("indexing", 5, 20, 5, 0, 0, 0, 0, Path("/p/x.jpg"), 1.0, 3.0))
    printer.close()
    text = stream.getvalue()
    assert "\r" in text
    assert "[######------------------] 5/20 (25%)  ETA 0:03  x.jpg" in text


def test_module_entry_point_and_fast_help() -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "devise_app", "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"devise-app {__version__}"
    # --help must not wait for the heavy modules
    code = (
        "import sys; from devise_app import cli; cli.build_parser().format_help(); "
        "heavy = [m for m in ('numpy', 'onnxruntime', 'annoy', 'PIL', 'PySide6') if m in sys.modules]; "
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[]"


def test_interrupted_index_run_is_kept(
    tmp_path: Path,
    photo_dir: Path,
    encoder: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from devise_app.engine.indexer import _Run

    store_batch = _Run.store_batch
    calls = []

    def interrupt_second_batch(self: Any, batch: Any) -> None:
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt
        store_batch(self, batch)

    monkeypatch.setattr(_Run, "store_batch", interrupt_second_batch)
    monkeypatch.setattr(encoder, "batch_size", 2)  # the batch size comes from the encoder
    code, out, err = run(capsys, "index", photo_dir, "--library", tmp_path / "lib")
    assert code == 130
    assert out == ""
    assert err.strip() == "devise-app: interrupted; what was indexed is kept, run again to finish"
    assert calls == [2, 2]

    monkeypatch.setattr(_Run, "store_batch", store_batch)
    code, out, _ = run(capsys, "index", photo_dir, "--library", tmp_path / "lib")
    assert code == 0
    assert "unchanged        2" in out
    assert "indexed          3" in out


def test_an_emptied_catalog_is_refused_and_nothing_is_lost(
    library_dir: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 0-byte catalog beside the index was truncated, not new: refuse it, touch nothing."""
    (library_dir / "catalog.sqlite").write_bytes(b"")
    before = sorted(p.name for p in library_dir.iterdir())
    code, _, err = run(capsys, "index", photo_dir, "--library", library_dir)
    assert code == 1
    assert_one_line_error(err, "is empty (0 bytes)", "Nothing was changed")
    assert sorted(p.name for p in library_dir.iterdir()) == before
    assert (library_dir / "catalog.sqlite").stat().st_size == 0


def test_a_zero_byte_catalog_alone_is_a_new_library(
    tmp_path: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a kill right after creating the file leaves: nothing to lose, so it is started anew."""
    library = tmp_path / "lib"
    library.mkdir()
    (library / "catalog.sqlite").write_bytes(b"")
    code, out, err = run(capsys, "index", photo_dir, "--library", library)
    assert code == 0, err
    assert "the library holds 5 photos" in out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_the_library_is_private_to_its_user(library_dir: Path, tmp_path: Path) -> None:
    assert library_dir.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared-lib"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    from devise_app.engine.catalog import Catalog

    Catalog.open(shared).close()
    assert shared.stat().st_mode & 0o777 == 0o700


def test_as_typed_sets_a_typo_aside_instead_of_reading_it(
    library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "a cup of espreso"
    code, out, err = run(capsys, "search", query, "--json", "--as-typed", "--library", library_dir)
    assert code == 0, err
    (answer,) = [json.loads(line) for line in out.splitlines()]
    (ignored,) = answer["ignored"]
    assert (
        ignored["word"] == "espreso" and ignored["suggestions"][0] == "espresso" and "read_as" not in ignored
    )
