"""``devise-app bench index``: how fast photos get indexed and searched on this machine.

Prints one table:

- end-to-end photos/s: the real ``Library.index`` run (scan, hash, decode in the
  thread pool, model, catalog writes, Annoy build) into a temporary library;
- model-only photos/s: the same encoder on batches of the same size, preprocessed
  in advance (no decoding): the ceiling, and end-to-end's share of it;
- decode + preprocess ms per photo on one thread;

on the ImageNet sample photos (``../shared/datasets/imagenet-sample``, or
``--images DIR``; generated photos when absent, and the table says so) and on
64 generated 12-megapixel JPEGs (cut from the sample photos); then Annoy query
latency and recall@10 against exact search on 100k synthetic 50-d vectors.
Targets are printed beside the numbers. Files are read once before timing, so
the numbers are CPU work, not disk speed; model-only and end-to-end runs
alternate three times and the best of each is shown, so that other work on the
machine disturbs the ratio less. The timed runs are ``devise_app.bench.common``'s,
which ``bench speed`` makes too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from devise_app.bench import common
from devise_app.bench.common import PipelineResult, Row, Sizes

ANN_DIM = 50
FULL = Sizes(
    large_count=64, model_only_limit=320, repeats=3, ann_sizes=(100_000,), ann_queries=1000
)  # fmt: skip
TINY = Sizes(
    sample_limit=8, generated_sample=8, generated_sample_size=(320, 240), large_count=4,
    large_size=(1200, 900), model_only_limit=8, repeats=1, ann_sizes=(500,), ann_queries=20,
)  # fmt: skip

TARGET_RATIO = 0.75
TARGET_LARGE_RATE = 40.0
TARGET_QUERY_P50_MS = 5.0


def _pipeline_rows(
    name: str, result: PipelineResult, rate_target: Callable[[PipelineResult], tuple[str, bool | None]]
) -> list[Row]:
    ratio = result.ceiling_ratio
    rate_text, rate_met = rate_target(result)
    sample = name.startswith("sample")
    return [
        Row(
            f"{name}: end-to-end ({result.photos} photos, {result.megabytes:.1f} MB each)",
            f"{result.end_to_end:.1f} photos/s",
            rate_text,
            rate_met,
        ),
        Row(f"{name}: model only, preprocessed", f"{result.ceiling:.1f} photos/s"),
        Row(
            f"{name}: end-to-end / model only",
            f"{ratio:.2f}",
            f">= {TARGET_RATIO}" if sample else "",
            ratio >= TARGET_RATIO if sample else None,
        ),
        Row(f"{name}: decode + preprocess, 1 thread", f"{result.decode_ms:.1f} ms/photo"),
    ]


def main(images: Path | None = None, sizes: Sizes = FULL) -> int:
    from devise_app.engine.model import ImageEncoder

    if common.folder_missing(images):
        return 1
    encoder = ImageEncoder()
    common.say(common.machine_line("index", encoder))
    (ann_items,) = sizes.ann_sizes
    width, height = sizes.large_size
    with tempfile.TemporaryDirectory(prefix="devise-bench-") as tmp_name:
        tmp = Path(tmp_name)
        sample = common.usable_sample(images, tmp / "generated", sizes)
        if sample is None:
            return 1
        common.say(f"Sample: {sample.name}. Generating {sizes.large_count} JPEGs of {width}x{height} …")
        large = common.make_photos(
            tmp / "large-photos", sizes.large_count, sizes.large_size, 2, sample.sources()
        )

        common.say("Measuring the sample photos …")
        sample_result = common.measure_pipeline(sample.paths, encoder, tmp / "sample", sizes)
        common.say(f"Measuring the {width * height / 1e6:.0f} MP JPEGs …")
        large_result = common.measure_pipeline(large, encoder, tmp / "large", sizes)
        common.say(f"Measuring Annoy on {ann_items:,} vectors …")
        path = tmp / "bench.annoy"
        build_s = common.build_ann(path, ann_items, ANN_DIM)
        ann = common.measure_ann(path, ann_items, ANN_DIM, sizes.ann_queries, build_s)
    encoder.close()

    rows = _pipeline_rows("sample", sample_result, lambda r: ("", None))
    rows += _pipeline_rows(
        f"{width * height / 1e6:.0f} MP JPEG",
        large_result,
        lambda r: (f">= {TARGET_LARGE_RATE:.0f} photos/s", r.end_to_end >= TARGET_LARGE_RATE),
    )
    rows += [
        Row(f"Annoy {common.count_label(ann_items)} x {ANN_DIM}-d: build", f"{ann.build_s:.1f} s"),
        Row(
            "Annoy query top 10: p50",
            f"{ann.p50_ms:.2f} ms",
            f"<= {TARGET_QUERY_P50_MS:.0f} ms",
            ann.p50_ms <= TARGET_QUERY_P50_MS,
        ),
        Row("Annoy query top 10: p99", f"{ann.p99_ms:.2f} ms"),
        Row("Annoy recall@10 vs exact", f"{ann.recall:.3f}"),
    ]
    common.print_table(rows)
    return 0
