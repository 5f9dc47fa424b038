"""Export backbone + head as one ONNX file and check it against torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from devise_app.engine.imaging import INPUT_SIZE
from devise_app.training.backbone import pooled_features
from devise_app.training.head import DeviseHead

INPUT_NAME = "images"
OUTPUT_NAMES = ["vectors", "features", "logits"]


class DeviseModel(nn.Module):
    """Preprocessed images (N, 3, INPUT_SIZE, INPUT_SIZE) -> unit vectors, pooled features, logits."""

    def __init__(self, classifier: nn.Module, head: DeviseHead):
        super().__init__()
        self.classifier = classifier
        self.head = head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = pooled_features(self.classifier, images)
        return self.head(features), features, self.head.logits(features)


def export_onnx(classifier: nn.Module, head: DeviseHead, path: Path) -> float:
    """Write the ONNX file; return the largest absolute difference from torch."""
    import onnxruntime

    model = DeviseModel(classifier, head).eval()
    example = torch.randn(4, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=OUTPUT_NAMES,
            dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *OUTPUT_NAMES]},
            opset_version=17,
            dynamo=False,
        )
        expected = [t.numpy() for t in model(example)]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(OUTPUT_NAMES, {INPUT_NAME: example.numpy()})
    return max(float(np.abs(a - e).max()) for a, e in zip(actual, expected, strict=True))
