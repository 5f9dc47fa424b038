"""The shipped text encoder (all-MiniLM-L6-v2 through ONNX Runtime) and the word space."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devise_app.engine import config
from devise_app.engine.errors import ModelFileError
from devise_app.engine.text import TEXT_ONNX_FILE, TOKENIZER_FILE, TextEncoder
from devise_app.engine.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def text_encoder() -> TextEncoder:
    return TextEncoder(config.models_dir())


def test_embeddings_are_unit_rows_and_batches_agree(text_encoder: TextEncoder) -> None:
    texts = ["dog", "A room with chairs, a table, and a woman in it.", "", "ünïcödé ✓ 猫"]
    batch = text_encoder.embed(texts)
    assert batch.shape == (4, text_encoder.dim) == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for text, row in zip(texts, batch, strict=True):
        np.testing.assert_allclose(text_encoder.embed_one(text), row, atol=1e-5)
    assert text_encoder.embed([]).shape == (0, 384)


def test_meaning_is_in_the_space(text_encoder: TextEncoder) -> None:
    dog, puppy, car = text_encoder.embed(["dog", "puppy", "car"])
    assert float(dog @ puppy) > float(dog @ car) + 0.2


def test_long_texts_are_cut(text_encoder: TextEncoder) -> None:
    long = "dog " * 400
    assert text_encoder.token_count(long) == 128
    assert np.isfinite(text_encoder.embed_one(long)).all()


def test_word_space_projection(vocabulary: Any) -> None:
    """Texts land in the model's word part: unit rows of word_dim, zeros in the codes."""
    vectors = vocabulary.encode(["beach", "a dog on a beach"])
    assert vectors.shape == (2, vocabulary.word_dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    full = vocabulary.text_vector("beach")
    assert full.shape == (vocabulary.dim,)
    assert not full[vocabulary.word_dim :].any()
    # a describe word's stored (int8) vector is its encoder vector
    stored = vocabulary.word_vector("beach")
    assert float(stored @ vectors[0]) > 0.99


@pytest.mark.parametrize("name", [TEXT_ONNX_FILE, TOKENIZER_FILE])
@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_a_broken_encoder_file_is_a_model_file_error(tmp_path: Path, name: str, damage: str) -> None:
    models = tmp_path / "models"
    shutil.copytree(config.models_dir(), models, ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    if damage == "missing":
        (models / name).unlink()
    else:
        (models / name).write_bytes(b"not a model file")
    with pytest.raises(ModelFileError, match=name.split(".")[0]):
        Vocabulary.load(models).encode(["dog"])
