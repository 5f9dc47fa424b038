"""The Ray engine: ``devise-app index --engine ray`` decodes and embeds on a Ray cluster.

The run is the plain indexer's (``devise_app.engine.indexer.index_folders``):
the same scan, the same comparison with the catalog, the same moves, removals,
skips and summary, and the driver (this process) writes every batch to the
catalog as a plain run does. Only the heavy part goes to Ray, through the
indexer's ``Loader`` seam, as a Ray Data pipeline:

1. a dataset of the files to load (path, size, mtime), in blocks of one model
   batch each (16 photos for CPU actors, 96 for GPU ones): a block is the unit
   of work throughout, one decode task, one actor call, one catalog batch;
2. ``map_batches(_decode_block)`` in CPU tasks: each file is hashed, checked
   against the hashes the catalog already has, and decoded and preprocessed by
   the plain indexer's own per-file step (``indexer.load_file``, which uses
   ``devise_app.engine.imaging``), so reasons for bad files are the same words;
3. ``map_batches(_Embedder)`` in an actor pool: one actor per GPU where the
   cluster has GPUs, else CPU actors; each holds the ONNX model (with the
   library's learned head, if it has one) and embeds the decoded rows;
4. the results stream back to the driver in order (``preserve_order``), are
   stored batch by batch, and the search index is rebuilt once at the end.

Faults: Ray retries a decode task whose worker died, and restarts a dead actor
and retries its batch (``max_restarts`` / ``max_task_retries`` -1), so a killed
worker costs only the batch it held. A run killed as a whole leaves the batches
it committed, and the next run (on Ray or not) goes on from there.
``DEVISE_APP_RAY_KILL_WORKER=DIR`` makes the first actor to reach its second
batch write that batch's size to ``DIR/killed`` and SIGKILL itself, and every
actor append the size of each batch it embeds to ``DIR/embedded`` (the test of
that fault).

Privacy: without an address, the local Ray instance binds to the loopback
address only (Ray otherwise advertises and binds its servers on the machine's
network address), starts no dashboard, and Ray's usage statistics are off
(``RAY_USAGE_STATS_ENABLED=0``, set before Ray is imported); the processes it
starts get an HTTP proxy on a closed loopback port, which ends the cloud-metadata
requests Ray's dashboard process makes whatever the usage setting. Ray is an
optional extra (``devise-app[cluster]``) and is imported only here, when a run
needs it.

The driver's part is the plain indexer's writing plus Ray Data's scheduling
threads, a cost per block: on the development machine about 2 ms of CPU per photo
on blocks of 16 and 1 ms on blocks of 96, which caps one run at about a thousand
photos per second however large the cluster (README, ``bench cluster``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from devise_app.engine import config, imaging, indexer, labels
from devise_app.engine.errors import ModelFileError, UserError
from devise_app.engine.indexer import FoundFile, IndexProgress, LoadedFile

if TYPE_CHECKING:
    from devise_app.engine.learning import LearnedHead
    from devise_app.engine.model import ImageEncoder
    from devise_app.engine.search import Library

log = logging.getLogger(__name__)

INSTALL_HINT = "the Ray engine needs Ray: pip install 'devise-app[cluster]'"
KILL_VARIABLE = "DEVISE_APP_RAY_KILL_WORKER"
LOOPBACK = "127.0.0.1"
HASH_BYTES = 16  # indexer.hash_file's digest size
# Memory a decode task declares: its block of model input (up to 96 x 0.6 MB) and
# one large photo being decoded. Declared, it also keeps Ray Data from fusing the
# decoding into the model actors (it fuses maps whose remote arguments are equal),
# so decoding runs in CPU tasks of its own and scales apart from the model.
DECODE_MEMORY = 256 << 20
CPU_MODEL_BATCH = 16  # photos per actor batch (model.CPU_BATCH_SIZE)
GPU_MODEL_BATCH = 96  # model.CUDA_BATCH_SIZE
# Environment set before Ray is imported in a local run: the first keeps the local
# instance on the loopback address (Ray's own switch for its single-machine mode,
# in which it binds its servers to 127.0.0.1, not to the machine's address); the
# second turns usage statistics off.
LOCAL_ENVIRONMENT = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
# Ray's dashboard process asks the cloud metadata service (169.254.169.254, and
# DNS for metadata.google.internal) which cloud it runs on, even with usage stats
# off. The processes a local run starts get an HTTP proxy on a closed loopback
# port, so such requests end at once on this machine; Ray's own connections
# (gRPC, to 127.0.0.1) go direct.
DEAD_PROXY = "http://127.0.0.1:9"
PROXY_ENVIRONMENT = {
    **{name: DEAD_PROXY for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")},
    **{name: "127.0.0.1,localhost,::1" for name in ("no_proxy", "NO_PROXY")},
    "no_grpc_proxy": "*",
}
# Ray's native code logs to the driver's stderr; only its fatal errors reach the
# terminal (the rest is in Ray's session logs). A user's own setting wins.
QUIET_ENVIRONMENT = {"RAY_BACKEND_LOG_LEVEL": "fatal"}
INPUT_SHAPE = (3, imaging.INPUT_SIZE, imaging.INPUT_SIZE)
CONNECT_TIMEOUT_S = 10.0  # for the first contact with a cluster's head


@dataclass(frozen=True)
class RayOptions:
    """Where and how to run. ``address`` None starts a local instance sized to this
    machine (``local_cpus`` overrides its CPU count); ``model_workers`` is the size
    of the CPU actor pool (default: half the cluster's CPUs; on GPUs, one per GPU)."""

    address: str | None = None
    model_workers: int | None = None
    local_cpus: int | None = None
    model_batch: int | None = None


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or ``UserError`` when Ray is not installed."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


# -- the Ray session ------------------------------------------------------------------------


@dataclass
class RaySession:
    """Ray for one index run: started (local) or joined (address) when the first
    photo needs embedding, shut down (local) or left (address) at the end."""

    options: RayOptions
    ray: Any = None
    start_seconds: float = 0.0  # how long ray.init took
    started_here: bool = False  # ray.init called here (a local instance, or joining the address)

    def open(self) -> Any:
        """The ``ray`` module, connected: joins a Ray this process already runs."""
        if self.ray is not None:
            return self.ray
        ray = self._import()
        if self.options.address is not None:
            _check_reachable(self.options.address)
        if not ray.is_initialized():
            started = time.perf_counter()
            self._init(ray)
            self.started_here = True
            self.start_seconds = time.perf_counter() - started
            log.info("Ray %s: %s", ray.__version__, ray.cluster_resources())
        self.ray = ray
        return ray

    def _import(self) -> Any:
        """Ray, imported with the environment it reads at import set first."""
        if self.options.address is None:
            os.environ.update(LOCAL_ENVIRONMENT)  # read by Ray at import and by its processes
        else:
            os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        for name, value in QUIET_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        ray = import_ray()
        _quiet_ray_data(ray)
        return ray

    def _init(self, ray: Any) -> None:
        if self.options.address is not None:
            ray.init(address=self.options.address, log_to_driver=False, logging_level=logging.ERROR)
            return
        _local_loopback(ray)
        cpus = self.options.local_cpus or max(os.cpu_count() or 1, self._workers_wanted() + 1)
        with _environment(PROXY_ENVIRONMENT):  # for the processes it starts
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                _node_ip_address=LOOPBACK,
            )

    def _workers_wanted(self) -> int:
        return self.options.model_workers or 1

    def close(self) -> None:
        """Stop the local instance, or leave the cluster; a Ray this process had
        already started for itself is left as it was."""
        if self.ray is not None and self.started_here and self.ray.is_initialized():
            self.ray.shutdown()
        self.ray = None


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, as it was afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_reachable(address: str) -> None:
    """``UserError`` at once for a ``HOST:PORT`` nobody answers on (Ray itself retries
    for minutes); ``auto`` and ``ray://`` addresses are left to Ray."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UserError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def start_local(options: RayOptions | None = None) -> RaySession:
    """A local Ray started now, for several runs on one instance (the benchmark, the
    tests): ``index_on_ray`` joins a Ray that is already up and leaves it up."""
    session = RaySession(replace(options or RayOptions(), address=None))
    session.open()
    return session


def _local_loopback(ray: Any) -> None:
    """Ray imported before the environment was set still takes its single-machine
    mode for this process (the processes it starts read the environment)."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is not None and hasattr(constants, "ENABLE_RAY_CLUSTER"):
        constants.ENABLE_RAY_CLUSTER = False


def _quiet_ray_data(ray: Any) -> None:
    """No progress bars, execution banners or tuning hints from Ray Data: the
    terminal shows the app's own progress line; Ray's logs stay in its session
    folder. (Called again by every run: a test framework resets warning filters.)"""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"ray\.")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.execution_options.preserve_order = True
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


# -- the pipeline's steps (run in Ray workers) ----------------------------------------------


@dataclass
class _Hashes:
    """The catalog's embedded hashes, sorted, for ``in`` tests in the decode tasks:
    one array in Ray's object store, read in place by every worker on a node."""

    ref: Any  # ObjectRef of an (N,) "S16" array
    _sorted: np.ndarray | None = field(default=None, repr=False)

    def __contains__(self, content_hash: object) -> bool:
        if self._sorted is None:
            import ray

            self._sorted = ray.get(self.ref)
        hashes = self._sorted
        if not len(hashes) or not isinstance(content_hash, bytes):
            return False
        key = np.array(content_hash, dtype=f"S{HASH_BYTES}")
        i = int(np.searchsorted(hashes, key))
        return i < len(hashes) and hashes[i] == key

    def __getstate__(self) -> dict[str, Any]:
        return {"ref": self.ref, "_sorted": None}


def _decode_block(batch: dict[str, np.ndarray], reusable: _Hashes) -> dict[str, np.ndarray]:
    """Hash and decode a block of files with the plain indexer's own step."""
    paths = [str(path) for path in batch["path"]]
    loaded = [
        indexer.load_file(FoundFile(path, int(size), int(mtime)), reusable)  # type: ignore[arg-type]
        for path, size, mtime in zip(paths, batch["size"], batch["mtime_ns"], strict=True)
    ]
    count = len(loaded)
    pixels = np.zeros((count, *INPUT_SHAPE), np.float32)
    hashes = np.zeros((count, HASH_BYTES), np.uint8)
    for i, item in enumerate(loaded):
        if item.pixels is not None:
            pixels[i] = item.pixels
        if item.hash is not None:
            hashes[i] = np.frombuffer(item.hash, np.uint8)
    return {
        "path": np.array(paths, dtype=object),
        "hash": hashes,
        "hashed": np.array([item.hash is not None for item in loaded], dtype=bool),
        "error": np.array([item.error or "" for item in loaded], dtype=object),
        "decoded": np.array([item.pixels is not None for item in loaded], dtype=bool),
        "pixels": pixels,
    }


class _Embedder:
    """A model actor: the ONNX model (and the library's learned head) loaded once."""

    def __init__(
        self, device: str, threads: int, head: LearnedHead | None, model_id: str, kill_dir: str | None
    ) -> None:
        from devise_app.engine.model import ImageEncoder
        from devise_app.engine.search import model_identity

        encoder = ImageEncoder(device=device, threads=threads)
        found = model_identity(encoder.model_dir)
        if found != model_id:
            raise ModelFileError(
                f"the model files on {os.uname().nodename} ({found}) differ from the driver's ({model_id}); "
                "install the same devise-app on every node"
            )
        self.encoder = labels.with_head(encoder, head) if head is not None else encoder
        self.kill_dir = kill_dir
        self.batches = 0

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        decoded = batch["decoded"].astype(bool)
        count = len(decoded)
        vectors = np.zeros((count, self.encoder.dim), np.float32)
        features = np.zeros((count, self.encoder.feature_dim), np.float32)
        if decoded.any():
            embedding = self.encoder.embed(np.asarray(batch["pixels"][decoded], np.float32))
            vectors[decoded] = embedding.vectors
            features[decoded] = embedding.features
        self.batches += 1
        if self.kill_dir is not None:
            _kill_hook(self.kill_dir, self.batches, int(decoded.sum()))
        out = {name: batch[name] for name in ("path", "hash", "hashed", "error", "decoded")}
        out["vector"], out["features"] = vectors, features
        return out


def _kill_hook(folder: str, batches: int, embedded: int) -> None:
    """The fault test's hook (``KILL_VARIABLE``): note the batch, and SIGKILL the first
    actor that reaches its second batch, before it hands that batch back."""
    with open(os.path.join(folder, "embedded"), "a") as journal:
        journal.write(f"{os.getpid()} {embedded}\n")
    if batches < 2:
        return
    try:
        marker = os.open(os.path.join(folder, "killed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(marker, f"{embedded}\n".encode())
    os.close(marker)
    os.kill(os.getpid(), signal.SIGKILL)


# -- the loader (in the driver) ---------------------------------------------------------------


@dataclass
class RayLoader:
    """The indexer's ``Loader`` on Ray: see the module docstring."""

    session: RaySession
    head: LearnedHead | None
    model_id: str

    def __call__(
        self, files: Sequence[FoundFile], reusable: frozenset[bytes]
    ) -> Iterator[list[tuple[str, LoadedFile]]]:
        ray = self.session.open()
        _quiet_ray_data(ray)
        batch = self._model_batch(ray)
        dataset = self._dataset(ray, files, reusable, batch)
        for block in dataset.iter_batches(batch_size=batch, batch_format="numpy", prefetch_batches=2):
            yield _loaded_rows(block)

    def _model_batch(self, ray: Any) -> int:
        if self.session.options.model_batch:
            return self.session.options.model_batch
        return GPU_MODEL_BATCH if _gpus(ray) else CPU_MODEL_BATCH

    def _dataset(self, ray: Any, files: Sequence[FoundFile], reusable: frozenset[bytes], batch: int) -> Any:
        """The pipeline: decode tasks, then the model actors; nothing runs until iterated."""
        import pyarrow as pa

        blocks = [
            pa.table(
                {
                    "path": [f.path for f in files[i : i + batch]],
                    "size": [f.size for f in files[i : i + batch]],
                    "mtime_ns": [f.mtime_ns for f in files[i : i + batch]],
                }
            )
            for i in range(0, len(files), batch)
        ]
        hashes = np.array(sorted(reusable), dtype=f"S{HASH_BYTES}")
        decoded = ray.data.from_arrow(blocks).map_batches(
            _decode_block,
            batch_size=None,
            batch_format="numpy",
            fn_kwargs={"reusable": _Hashes(ray.put(hashes))},
            num_cpus=1,
            memory=DECODE_MEMORY,
        )
        gpus = _gpus(ray)
        workers = int(gpus) if gpus else self._cpu_workers(ray)
        threads = 1 if gpus else max(1, int(ray.cluster_resources().get("CPU", 1)) // (2 * workers))
        kill_dir = os.environ.get(KILL_VARIABLE) or None
        return decoded.map_batches(
            _Embedder,
            fn_constructor_args=("cuda" if gpus else "cpu", threads, self.head, self.model_id, kill_dir),
            batch_size=batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=1 if gpus else 0,
            num_cpus=1,
        )

    def _cpu_workers(self, ray: Any) -> int:
        """CPU model actors: as asked, else half the cluster's CPUs; always leaving
        one CPU to the decode tasks (actors hold theirs for the whole run)."""
        cpus = int(ray.cluster_resources().get("CPU", 1))
        wanted = self.session.options.model_workers or cpus // 2
        return max(1, min(wanted, cpus - 1))


def _gpus(ray: Any) -> int:
    return int(ray.cluster_resources().get("GPU", 0))


def _loaded_rows(block: dict[str, np.ndarray]) -> list[tuple[str, LoadedFile]]:
    """The batch as the indexer takes it: (path, what became of the file)."""
    rows = []
    for i, path in enumerate(block["path"]):
        content_hash = bytes(block["hash"][i]) if block["hashed"][i] else None
        error = str(block["error"][i]) or None
        if error is not None:
            item = LoadedFile(hash=content_hash, error=error)
        elif block["decoded"][i]:
            item = LoadedFile(
                hash=content_hash,
                vector=np.array(block["vector"][i]),
                features=np.array(block["features"][i]),
            )
        else:  # its bytes are embedded already: the indexer takes their vector from the catalog
            item = LoadedFile(hash=content_hash)
        rows.append((str(path), item))
    return rows


# -- the run ------------------------------------------------------------------------------------


def index_on_ray(
    library: Library,
    folders: Sequence[Path],
    options: RayOptions | None = None,
    cancel: threading.Event | None = None,
) -> Generator[IndexProgress, None, None]:
    """``Library.index`` with the decoding and the model on Ray: the same progress
    items, the same library. Checks the folders and that Ray is installed at once."""
    from devise_app.engine.learning import LearnedHead
    from devise_app.engine.search import model_identity

    if not ray_available():
        raise UserError(INSTALL_HINT)
    roots = indexer.check_folders(folders)
    catalog = library.catalog
    model_id = model_identity(config.models_dir())
    labels.reconcile(catalog, library.path, library.shipped_projection)
    head = LearnedHead.load(labels.head_path(library.path))
    session = RaySession(options or RayOptions())
    loader = RayLoader(session, head, model_id)

    def local_encoder() -> ImageEncoder:
        return labels.with_head(library.encoder, head) if head is not None else library.encoder

    def run() -> Generator[IndexProgress, None, None]:
        from devise_app.engine.ann import VectorIndex

        try:
            headed = labels.current_head(catalog, library.path, library.shipped_projection)
            for progress in indexer.index_folders(
                catalog, roots, local_encoder, model_id, cancel, loader=loader, headed_vectors=headed
            ):
                if progress.finished:
                    _rebuild_index(VectorIndex, library)
                yield progress
        finally:
            with suppress(Exception):
                session.close()

    return run()


def _rebuild_index(vector_index: Callable[..., Any], library: Library) -> None:
    index = vector_index(library.path, library.catalog)
    try:
        index.ensure_current()
    finally:
        index.close()
