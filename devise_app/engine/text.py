"""The text encoder at run time: words, phrases and sentences to unit vectors.

``models/text_encoder.onnx`` is all-MiniLM-L6-v2 (see ``devise_app.training.text_encoder``):
``input_ids, attention_mask (N, L) -> embeddings (N, 384)`` unit rows, mean pooled.
``models/tokenizer.json`` is its WordPiece tokenizer, run by Hugging Face's
``tokenizers`` library. Both are read from the model folder; nothing is downloaded.
The encoder runs on the CPU with one thread: a query is a few dozen tokens, and
a GPU or more threads would cost more in start-up and hand-over than they save.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from devise_app.engine.errors import ModelFileError
from devise_app.engine.interrupts import interrupts_held

TEXT_ONNX_FILE = "text_encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 128  # longer texts are cut (the encoder was trained on up to 128 tokens)
BATCH_SIZE = 64


class TextEncoder:
    """Texts -> unit vectors in the encoder's own (384-d) space. Thread-safe."""

    def __init__(self, model_dir: Path):
        with interrupts_held():  # a Ctrl+C in their native start-up would become an ImportError
            import onnxruntime
            from tokenizers import Tokenizer

        onnx_path, tokenizer_path = model_dir / TEXT_ONNX_FILE, model_dir / TOKENIZER_FILE
        for path in (onnx_path, tokenizer_path):
            if not path.is_file():
                raise ModelFileError(
                    f"text encoder file {path} is missing; reinstall the app or rebuild the model "
                    "with python -m devise_app.training"
                )
        try:
            self._tokenizer: Any = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises its own untyped errors
            raise ModelFileError(f"tokenizer {tokenizer_path} cannot be read: {exc}") from None
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(
                str(onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelFileError(f"text encoder {onnx_path} cannot be loaded: {exc}") from None
        outputs = [o.name for o in self._session.get_outputs()]
        if outputs != ["embeddings"]:
            raise ModelFileError(f"text encoder {onnx_path} has unexpected outputs {outputs}")
        self.dim = int(self._session.get_outputs()[0].shape[1])
        self._lock = threading.Lock()  # the tokenizer's settings are shared state

    def token_count(self, text: str) -> int:
        """Word pieces the text is cut into, [CLS] and [SEP] included."""
        with self._lock:
            return len(self._tokenizer.encode(text).ids)

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) unit rows; texts of similar length are run together."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            length = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            out[rows] = self._session.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})[0]
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
