"""The shipped DeViSE model at run time: ONNX Runtime on CUDA when usable, else CPU.

``models/devise.onnx`` maps a batch of preprocessed images (see
``devise_app.engine.imaging``) to unit vectors in the visual-semantic space, and also
returns the pooled CNN features and the classifier logits. ``models/head.npz``
holds the head's parameters so stored features can be re-projected in numpy
without running the CNN again (a library's own learned head uses the same form).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from devise_app import MODEL_FORMAT_VERSION
from devise_app.engine import config
from devise_app.engine.errors import ModelFileError
from devise_app.engine.interrupts import interrupts_held
from devise_app.engine.vectors import softmax, unit_rows

log = logging.getLogger(__name__)

ONNX_FILE = "devise.onnx"
HEAD_FILE = "head.npz"
MANIFEST_FILE = "manifest.json"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
INPUT_NAME = "images"
OUTPUT_NAMES = ("vectors", "features", "logits")
CPU_BATCH_SIZE = 16
CUDA_BATCH_SIZE = 96  # large, and within the indexer's cap of 64 MB of model input per batch


REBUILD_HINT = "reinstall the app or rebuild the model with python -m devise_app.training"


@dataclass
class Embedding:
    vectors: np.ndarray  # (N, dim) unit rows
    features: np.ndarray  # (N, feature_dim) pooled CNN features
    logits: np.ndarray  # (N, 1000) ImageNet classifier logits


def read_manifest(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"model manifest {path} is missing; " + REBUILD_HINT) from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"model manifest {path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict):
        raise ModelFileError(f"model manifest {path} is damaged: not a JSON object; " + REBUILD_HINT)
    if manifest.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"model files in {model_dir} have format version {manifest.get('format_version')!r}, "
            f"this app reads version {MODEL_FORMAT_VERSION}"
        )
    for key in ("dim", "feature_dim"):
        value = manifest.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ModelFileError(f"model manifest {path} is damaged: {key!r} is {value!r}; " + REBUILD_HINT)
    return manifest


@dataclass
class Head:
    """Features -> unit vectors, the same arithmetic as the ONNX graph's head."""

    fc_weight: np.ndarray
    fc_bias: np.ndarray
    word_vectors: np.ndarray
    codes: np.ndarray
    word_temperature: float
    code_temperature: float
    word_weight: float
    code_weight: float

    @classmethod
    def load(cls, path: Path) -> Head:
        try:
            with np.load(path) as data:
                return cls(
                    fc_weight=data["fc_weight"],
                    fc_bias=data["fc_bias"],
                    word_vectors=data["word_vectors"],
                    codes=data["codes"],
                    word_temperature=float(data["word_temperature"]),
                    code_temperature=float(data["code_temperature"]),
                    word_weight=float(data["word_weight"]),
                    code_weight=float(data["code_weight"]),
                )
        except FileNotFoundError:
            raise ModelFileError(f"model head {path} is missing") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelFileError(f"model head {path} is damaged: {exc}") from None

    def check(self, path: Path, feature_dim: int, dim: int) -> None:
        """ModelFileError unless the head maps ``feature_dim`` features to ``dim``-d vectors."""
        classes = self.fc_bias.shape[0] if self.fc_bias.ndim == 1 else -1
        fits = (
            self.fc_weight.shape == (classes, feature_dim)
            and self.word_vectors.ndim == 2
            and self.codes.ndim == 2
            and len(self.word_vectors) == len(self.codes) == classes
            and self.word_vectors.shape[1] + self.codes.shape[1] == dim
        )
        if not fits:
            raise ModelFileError(
                f"model head {path} does not fit the model (features {feature_dim}, vectors {dim}); "
                + REBUILD_HINT
            )

    @property
    def label_vectors(self) -> np.ndarray:
        return np.hstack([self.word_weight * self.word_vectors, self.code_weight * self.codes])

    def project(self, features: np.ndarray) -> np.ndarray:
        logits = features.astype(np.float32) @ self.fc_weight.T + self.fc_bias
        word_part = unit_rows(softmax(logits, self.word_temperature) @ self.word_vectors)
        code_part = unit_rows(softmax(logits, self.code_temperature) @ self.codes)
        return np.hstack([self.word_weight * word_part, self.code_weight * code_part]).astype(np.float32)


def nvidia_driver_present() -> bool:
    """Whether an NVIDIA driver is loaded: without one CUDA cannot work, so the app
    does not try (trying makes ONNX Runtime print alarming errors)."""
    if Path("/proc/driver/nvidia/version").exists():
        return True
    # Ask the dynamic loader for the driver library itself: ctypes.util.find_library
    # runs ldconfig, gcc and ld from PATH, so a planted "gcc" would run.
    import ctypes

    try:
        ctypes.CDLL("nvcuda.dll" if os.name == "nt" else "libcuda.so.1")
    except OSError:
        return False
    return True


def choose_providers(device: str, available: list[str], driver_present: bool) -> tuple[list[str], str]:
    """Providers to ask for, in order, and a note saying why (empty: decided after loading)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "cpu":
        return [CPU], "CPU (asked for)"
    if CUDA not in available:
        return [CPU], "CPU (this ONNX Runtime build has no CUDA support)"
    if device == "auto" and not driver_present:
        return [CPU], "CPU (no NVIDIA GPU driver found)"
    return [CUDA, CPU], ""


def _preload_cuda_libraries() -> None:
    import onnxruntime

    preload = getattr(onnxruntime, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception as exc:  # libraries from NVIDIA's pip packages are optional
            log.debug("onnxruntime.preload_dlls failed: %s", exc)


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class ImageEncoder:
    """Runs the ONNX model in batches."""

    def __init__(self, model_dir: Path | None = None, device: str = "auto", threads: int | None = None):
        """``threads``: CPU cores for the model (default: all this process may use)."""
        with interrupts_held():  # a Ctrl+C in its native start-up would become an ImportError
            import onnxruntime

        self.model_dir = model_dir or config.models_dir()
        self.manifest = read_manifest(self.model_dir)
        self.name: str = self.manifest.get("name", "devise")
        self.dim: int = int(self.manifest["dim"])
        self.feature_dim: int = int(self.manifest["feature_dim"])
        self.head = Head.load(self.model_dir / HEAD_FILE)
        self.head.check(self.model_dir / HEAD_FILE, self.feature_dim, self.dim)

        onnx_path = self.model_dir / ONNX_FILE
        if not onnx_path.is_file():
            raise ModelFileError(f"model file {onnx_path} is missing; " + REBUILD_HINT)
        driver_present = nvidia_driver_present()
        providers, note = choose_providers(device, onnxruntime.get_available_providers(), driver_present)
        onnxruntime.set_default_logger_severity(4)  # we report the provider ourselves, calmly
        if CUDA in providers and driver_present:
            _preload_cuda_libraries()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One thread per run: batches are split over ``self.parallel`` concurrent runs
        # instead (see ``embed``). Independent runs never wait for each other, while one
        # run's intra-op threads meet at a barrier after every layer and all wait for the
        # slowest, which on a busy machine (decoders, the window) is often preempted:
        # on 2 cores, 2 runs of 1 thread did 15-25 % more photos/s than 1 run of 2.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # no thread pool is left to spin, but keep it explicit: idle threads must sleep,
        # the window and the decoders need the cores too
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelFileError(f"model file {onnx_path} cannot be loaded: {exc}") from None
        self.provider: str = self.session.get_providers()[0]
        if not note:
            note = (
                "CUDA GPU"
                if self.provider == CUDA
                else "CPU (CUDA was asked for but its libraries or a GPU are not usable here)"
            )
        self.provider_note = note
        # A GPU wants large batches and one run at a time (fed through I/O binding);
        # the CPU gets one single-threaded run per core.
        self.batch_size = CUDA_BATCH_SIZE if self.provider == CUDA else CPU_BATCH_SIZE
        self.parallel = 1 if self.provider == CUDA else max(1, threads or default_threads())
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        log.info("model %s runs on %s", self.name, note)
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs[:3] != ["vectors", "features", "logits"] or self.session.get_inputs()[0].name != "images":
            raise ModelFileError(f"model file {onnx_path} has unexpected inputs/outputs {outputs}")

    def embed(self, batch: np.ndarray) -> Embedding:
        """Vectors, features and logits of a preprocessed (N, 3, H, W) batch.

        On the CPU the batch is cut into up to ``self.parallel`` parts run at once
        (the calling thread runs the first); on CUDA it is run whole through I/O
        binding. Safe to call from several threads.
        """
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, H, W) batch, got shape {batch.shape}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.provider == CUDA:
            return self._run_bound(batch, "cuda")
        parts = min(self.parallel, len(batch))
        if parts <= 1:
            return self._run(batch)
        chunks = np.array_split(batch, parts)
        pool = self._executor()
        futures = [pool.submit(self._run, chunk) for chunk in chunks[1:]]
        results = [self._run(chunks[0])] + [future.result() for future in futures]
        return Embedding(
            np.concatenate([r.vectors for r in results]),
            np.concatenate([r.features for r in results]),
            np.concatenate([r.logits for r in results]),
        )

    def _run(self, batch: np.ndarray) -> Embedding:
        vectors, features, logits = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        return Embedding(vectors, features, logits)

    def _run_bound(self, batch: np.ndarray, device: str) -> Embedding:
        """One run with I/O binding: the batch is copied to ``device`` once, in one
        piece, and the outputs are written straight into host memory (no staging
        copies, no per-run output allocation on the device)."""
        import onnxruntime

        binding = self.session.io_binding()
        if device == "cpu":
            binding.bind_cpu_input(INPUT_NAME, batch)
        else:
            on_device = onnxruntime.OrtValue.ortvalue_from_numpy(batch, device, 0)
            binding.bind_ortvalue_input(INPUT_NAME, on_device)
        for name in OUTPUT_NAMES:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        vectors, features, logits = binding.copy_outputs_to_cpu()
        return Embedding(vectors, features, logits)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, self.parallel - 1), thread_name_prefix="devise-model"
                )
            return self._pool

    def close(self) -> None:
        """Stop the helper threads (they also end with the process)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def project(self, features: np.ndarray) -> np.ndarray:
        return self.head.project(features)
