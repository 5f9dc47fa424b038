"""The Library facade with the real model on real photos."""

from __future__ import annotations

import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devise_app.engine.ann import INDEX_FILENAME
from devise_app.engine.catalog import LibraryError
from devise_app.engine.query import QueryError, label_query
from devise_app.engine.search import Library, describe_photo

RunIndex = Callable[..., Any]


@pytest.fixture
def indexed(library: Any, photo_dir: Path, run_index: RunIndex) -> Any:
    run_index(library, [photo_dir])
    return library


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cat", "chelsea.png"),
        ("espresso", "coffee.png"),
        ("cup of coffee", "coffee.png"),
        ("missile", "rocket.jpg"),
        ("motorbike", "motorcycle_left.png"),
        ("scooter", "motorcycle_left.png"),
    ],
)
def test_search_finds_the_photo(indexed: Any, query: str, expected: str) -> None:
    hits = indexed.search(query, top=3)
    assert hits[0].path.name == expected
    assert hits[0].path.is_absolute()
    assert hits[0].score > hits[1].score > hits[2].score
    assert -1.0 <= hits[2].score <= hits[0].score <= 1.0


def test_top_limits_the_results(indexed: Any) -> None:
    assert len(indexed.search("cat", top=2)) == 2
    assert len(indexed.search("cat", top=50)) == 5


def test_bad_queries_raise_query_error(indexed: Any) -> None:
    with pytest.raises(QueryError, match="Unknown word"):
        indexed.search("xqzvvbn")
    with pytest.raises(QueryError):
        indexed.search("")
    with pytest.raises(QueryError):
        indexed.search("cat - cat")


def test_label_queries(indexed: Any, photo_dir: Path) -> None:
    indexed.add_label("Kitty", [photo_dir / "chelsea.png"])
    indexed.add_label("Mornings", [photo_dir / "coffee.png", photo_dir / "chelsea.png"])
    assert indexed.labels() == [("Kitty", 1), ("Mornings", 2)]
    assert indexed.labels_of(photo_dir / "chelsea.png") == ["Kitty", "Mornings"]

    hits = indexed.search("label:kitty")
    assert [(hit.path.name, hit.score) for hit in hits] == [("chelsea.png", 1.0)]
    assert {hit.path.name for hit in indexed.search('label:"Mornings"')} == {"chelsea.png", "coffee.png"}
    assert len(indexed.search("label:Mornings", top=1)) == 1

    with pytest.raises(QueryError) as error:
        indexed.search("label:Kity")
    assert error.value.suggestions == ["label:Kitty"]
    assert indexed.search("label:Kitty + dog")[0].path.name == "chelsea.png"

    indexed.remove_label("Mornings", [photo_dir / "chelsea.png"])
    assert [hit.path.name for hit in indexed.search("label:Mornings")] == ["coffee.png"]
    indexed.create_label("Empty")
    assert indexed.search("label:Empty") == []
    with pytest.raises(QueryError, match="no indexed photos"):
        indexed.search("label:Empty + dog")
    indexed.delete_label("empty")
    with pytest.raises(LibraryError):
        indexed.delete_label("Empty")


def test_an_unknown_label_name_suggests_the_close_ones(indexed: Any, photo_dir: Path) -> None:
    indexed.add_label("Good dogs", [photo_dir / "chelsea.png"])
    indexed.add_label("Goodies", [photo_dir / "coffee.png"])
    indexed.add_label("Rockets", [photo_dir / "rocket.jpg"])

    def suggested(query: str) -> list[str]:
        with pytest.raises(QueryError) as error:
            indexed.find(query)
        assert error.value.message.startswith("No label named")
        return error.value.suggestions

    assert suggested("label:Goood") == ['label:"Good dogs"', "label:Goodies"]  # its start misspelt
    with pytest.raises(QueryError, match=r"Did you mean: label:\"Good dogs\", label:Goodies\?"):
        indexed.search("label:Goood")  # what the command line prints
    assert suggested("label:good") == ['label:"Good dogs"', "label:Goodies"]  # names starting with it
    assert suggested("label:ROKCETS") == ["label:Rockets"]  # a misspelling, in capitals
    assert suggested('label:"Goodies dogs" + cat')[0] == 'label:"Good dogs"'  # a label with words
    assert suggested("label:xyz") == []
    for query in ("label:C++", 'label:"C++"', "label:Rockets++"):  # named whole, never cut at "+"
        with pytest.raises(QueryError) as error:
            indexed.find(query)
        assert error.value.message == f"No label named {query[6:].strip(chr(34))!r}."
    assert suggested("label:Rockets++") == ["label:Rockets"]
    assert indexed.search("label:Rockets + cat")  # arithmetic on a label still parses


@pytest.mark.parametrize("name", ["C++", "a+b", "x(1)", "Mom & Dad", "label:odd", "2*dog"])
def test_any_label_name_is_found_as_it_is(indexed: Any, photo_dir: Path, name: str) -> None:
    """Label names are looked up whole, never read as query syntax."""
    indexed.add_label(name, [photo_dir / "rocket.jpg"])
    assert indexed.search(name, top=1)[0].path.name == "rocket.jpg"
    assert [hit.path.name for hit in indexed.search(f"label:{name}", top=5)] == ["rocket.jpg"]
    assert [hit.path.name for hit in indexed.search(f'label:"{name}"', top=5)] == ["rocket.jpg"]
    assert indexed.search(f"{label_query(name)} + rocket", top=1)[0].path.name == "rocket.jpg"  # in a sum
    assert indexed.photo_labels() == {photo_dir.resolve() / "rocket.jpg": [name]}


def test_label_errors(indexed: Any, tmp_path: Path, photo_dir: Path) -> None:
    with pytest.raises(LibraryError, match="not a photo of the library"):
        indexed.add_label("X", [tmp_path / "elsewhere.jpg"])
    with pytest.raises(LibraryError, match="needs a name"):
        indexed.add_label("  ", [photo_dir / "coffee.png"])
    with pytest.raises(LibraryError, match="quotes"):
        indexed.create_label('say "cheese"')
    with pytest.raises(LibraryError, match="no label named"):
        indexed.remove_label("Nope", [photo_dir / "coffee.png"])


def test_similar(indexed: Any, photo_dir: Path, tmp_path: Path, copy_photo: Any) -> None:
    hits = indexed.similar(photo_dir / "chelsea.png", top=10)
    assert len(hits) == 4
    assert all(hit.path.name != "chelsea.png" for hit in hits)

    outside = copy_photo("chelsea.png", tmp_path / "elsewhere" / "cat.png")  # not in the library: embedded
    hits = indexed.similar(outside, top=2)
    assert hits[0].path.name == "chelsea.png"
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)

    with pytest.raises(LibraryError, match="no such photo"):
        indexed.similar(tmp_path / "missing.jpg")


def test_describe_needs_no_library(
    tmp_path: Path, encoder: Any, vocabulary: Any, user_dirs: dict[str, Path], copy_photo: Any
) -> None:
    photo = copy_photo("rocket.jpg", tmp_path / "r.jpg")
    words = describe_photo(photo, top=5, encoder=encoder, vocabulary=vocabulary)
    assert len(words) == 5
    assert "missile" in [word.text for word in words]
    assert not any(word.is_label for word in words)
    assert words[0].score >= words[-1].score
    assert not user_dirs["data"].exists()  # no library was created


def test_search_index_is_rebuilt_only_after_a_change(
    indexed: Any, photo_dir: Path, run_index: RunIndex, copy_photo: Any
) -> None:
    vectors = indexed._vector_index()
    assert vectors.builds == 1  # built at the end of the index run
    index_file = indexed.path / INDEX_FILENAME
    stamp = index_file.stat().st_mtime_ns
    indexed.search("cat")
    indexed.similar(photo_dir / "coffee.png")
    run_index(indexed, [photo_dir])  # nothing changed
    indexed.search("dog")
    assert vectors.builds == 1
    assert index_file.stat().st_mtime_ns == stamp

    copy_photo("camera.png", photo_dir)
    run_index(indexed, [photo_dir])
    assert vectors.builds == 2
    assert any(hit.path.name == "camera.png" for hit in indexed.search("tripod", top=6))
    assert vectors.builds == 2


def test_counts_and_dates(library: Any, photo_dir: Path, run_index: RunIndex) -> None:
    assert library.photo_count() == 0
    assert library.last_indexed_at() is None
    before = time.time()
    run_index(library, [photo_dir])
    assert library.photo_count() == 5
    last = library.last_indexed_at()
    assert last is not None and before <= last <= time.time()
    assert library.problems() == []


def test_reading_a_library_that_does_not_exist(tmp_path: Path, encoder: Any, vocabulary: Any) -> None:
    library = Library(tmp_path / "none", encoder=encoder, vocabulary=vocabulary, create=False)
    with pytest.raises(LibraryError, match="no photo library"):
        library.search("cat")
    assert not (tmp_path / "none").exists()
    library.close()


def test_default_library_folder(user_dirs: dict[str, Path], encoder: Any, vocabulary: Any) -> None:
    with Library(encoder=encoder, vocabulary=vocabulary) as library:
        assert library.photo_count() == 0
        assert library.path == user_dirs["data"] / "library"
    assert (user_dirs["data"] / "library" / "catalog.sqlite").exists()


def test_a_worker_thread_indexes_while_the_gui_thread_reads(
    library: Any, photo_dir: Path, copy_photo: Any, run_index: RunIndex
) -> None:
    run_index(library, [photo_dir])
    for name in ("camera.png", "horse.png", "coffee.png"):
        copy_photo(name, photo_dir / "more" / name.replace(".png", "2.png"))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            run_index(library, [photo_dir], batch_size=1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive():
        assert library.search("cat", top=3)
        assert library.photo_count() >= 5
    worker.join()
    assert errors == []
    assert library.photo_count() == 8


def test_searches_during_a_run_do_not_rebuild_after_every_batch(
    indexed: Any, photo_dir: Path, copy_photo: Any
) -> None:
    vectors = indexed._vector_index()
    for name in ("camera.png", "horse.png", "coffee.png"):
        copy_photo(name, photo_dir / "more" / name.replace(".png", "2.png"))
    items = []
    for progress in indexed.index([photo_dir], batch_size=1):
        items.append(progress)
        hits = indexed.search("cat", top=10)
        if not progress.finished:
            assert len(hits) >= 5
            assert vectors.builds == 1  # the index as it was before the run
    assert len(items) > 3
    assert vectors.builds == 2  # brought up to date once, before the last item
    assert len(hits) == 7  # coffee2.png is an exact copy of coffee.png: shown once, with its count
    assert sorted(hit.copies for hit in hits) == [1] * 6 + [2]
    assert vectors.builds == 2


def test_a_library_of_an_earlier_model_is_re_projected_not_re_embedded(
    library: Any, photo_dir: Path, run_index: RunIndex, tmp_path: Path, vocabulary: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An app update ships a new head: the stored CNN features give the new vectors
    at once (a library of the 114-d model failed every search with the 128-d one)."""
    from devise_app.engine import config, labels
    from devise_app.engine.learning import LearnedHead
    from devise_app.engine.model import HEAD_FILE, Head

    run_index(library, [photo_dir])
    library.add_label("Zorblax", [photo_dir / "chelsea.png"])
    deque(library.learn(), maxlen=1)
    assert labels.head_path(library.path).exists()
    library.close()
    updated = tmp_path / "models-update"
    shutil.copytree(config.models_dir(), updated)
    with np.load(updated / HEAD_FILE) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["codes"] = arrays["codes"][::-1].copy()  # another head for the same CNN
    np.savez(updated / HEAD_FILE, **arrays)
    monkeypatch.setenv("DEVISE_APP_MODELS_DIR", str(updated))

    reopened = type(library)(library.path, vocabulary=vocabulary)  # no model session given
    assert reopened.search("cat", top=1)[0].path.name == "chelsea.png"
    _, features = reopened.catalog.features()
    _, vectors = reopened.catalog.vectors()
    assert np.abs(Head.load(updated / HEAD_FILE).project(features) - vectors).max() < 1e-5
    assert reopened._encoder is None, "re-projecting needs no inference session"
    assert LearnedHead.load(labels.head_path(library.path)) is None  # the old model's head is kept aside
    assert list(library.path.glob("learned_head.model-*.npz"))
    assert reopened.labels() == [("Zorblax", 1)]
    reopened.close()


def test_a_typo_is_read_as_meant_but_never_a_word_of_a_label_name(indexed: Any, photo_dir: Path) -> None:
    found = indexed.find("a cup of espreso")
    assert found.corrected == [("espreso", "espresso")]
    assert found.hits[0].path.name == "coffee.png"
    as_typed = indexed.find("a cup of espreso", read_typos=False)
    assert as_typed.corrected == [] and as_typed.ignored_words[0][0] == "espreso"
    assert indexed.find("lassy on a mat").corrected == [("lassy", "classy")]
    indexed.add_label("Lassy Cat", [photo_dir / "chelsea.png"])  # her name: no typo of anything
    found = indexed.find("lassy on a mat")
    assert found.corrected == [] and [word for word, _ in found.ignored_words] == ["lassy"]
    indexed.add_label("Lassy", [photo_dir / "chelsea.png"])  # a label of that name: read as the label
    found = indexed.find("lassy on a mat")
    assert (
        found.labels == ["Lassy"] and found.ignored_words == [] and found.hits[0].path.name == "chelsea.png"
    )


def test_a_label_named_in_a_sentence_is_searched_as_the_label(indexed: Any, photo_dir: Path) -> None:
    indexed.add_label("Zorblax", [photo_dir / "rocket.jpg"])
    found = indexed.find("zorblax in the sky")
    assert found.labels == ["Zorblax"] and found.corrected == []
    assert found.hits[0].path.name == "rocket.jpg"
    assert indexed.find("photos in the sky").labels == []
