"""The visual-semantic head and its training with DeViSE's hinge rank loss.

A photo's vector has two parts, both unit-length before weighting:

    word part  = normalise( softmax(logits / t_w) @ S )     96-d text-encoder space
    code part  = normalise( softmax(logits / t_c) @ C )     32-d label codes
    z          = [ sqrt(s) * word part , sqrt(1 - s) * code part ]

with logits = W f + b from the pretrained classifier (frozen) and f the pooled
CNN features. S holds the label texts' embeddings by the text encoder
(all-MiniLM-L6-v2, "tabby cat, a kind of domestic cat: a cat with a grey or tawny
coat ...", projected on their top principal directions: text_space.py): the part
that words, sentences and word arithmetic reach, since a text's vector is its
embedding with zeros in the code part. C holds one code per class, initialised
from the classifier's own geometry and trained with the rank loss of Frome et al.
(margin 0.1, unit label vectors [sqrt(s) S_c, sqrt(1 - s) C_c], negatives over
all labels). The codes keep classes with near-identical texts apart (120 dog
breeds), so a query naming a class (its full vector) finds that class's photos,
while text queries rank photos by the word part alone.

No ImageNet photos are available offline (and the sample photos are evaluation
data), so training and validation use *pseudo-features* drawn from the
classifier itself: the mean activation implied by the last batch-norm layer,
plus a class direction (a row of W), plus a second, visually similar class
(chosen by the similarity of W's rows) and noise. Their statistics were set to
match the classifier's published accuracy (about 75 % top-1) and the logit
range it shows on scikit-image photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MARGIN = 0.1


class DeviseHead(nn.Module):
    def __init__(
        self,
        fc: nn.Linear,
        word_vectors: np.ndarray,
        codes: np.ndarray,
        word_temperature: float,
        code_temperature: float,
        word_share: float,
    ):
        super().__init__()
        self.weight = nn.Parameter(fc.weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(fc.bias.detach().clone(), requires_grad=False)
        self.words = nn.Parameter(torch.from_numpy(word_vectors.astype(np.float32)), requires_grad=False)
        self.codes = nn.Parameter(torch.from_numpy(codes.astype(np.float32)).clone())
        self.word_temperature = word_temperature
        self.code_temperature = code_temperature
        # share of the squared norm given to the word part, for photos and labels alike
        self.word_weight = float(np.sqrt(word_share))
        self.code_weight = float(np.sqrt(1.0 - word_share))

    def label_vectors(self) -> torch.Tensor:
        return torch.cat(
            [
                self.word_weight * F.normalize(self.words, dim=1),
                self.code_weight * F.normalize(self.codes, dim=1),
            ],
            dim=1,
        )

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight.T + self.bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.logits(features)
        word_probs = torch.softmax(logits / self.word_temperature, dim=1)
        code_probs = torch.softmax(logits / self.code_temperature, dim=1)
        word_part = F.normalize(word_probs @ F.normalize(self.words, dim=1), dim=1)
        code_part = F.normalize(code_probs @ F.normalize(self.codes, dim=1), dim=1)
        return torch.cat([self.word_weight * word_part, self.code_weight * code_part], dim=1)

    def export_arrays(self) -> dict[str, np.ndarray]:
        """What numpy needs to re-project stored features (devise_app.engine.model)."""
        return {
            "fc_weight": self.weight.detach().numpy().astype(np.float32),
            "fc_bias": self.bias.detach().numpy().astype(np.float32),
            "word_vectors": F.normalize(self.words, dim=1).detach().numpy().astype(np.float32),
            "codes": F.normalize(self.codes, dim=1).detach().numpy().astype(np.float32),
            "word_temperature": np.float32(self.word_temperature),
            "code_temperature": np.float32(self.code_temperature),
            "word_weight": np.float32(self.word_weight),
            "code_weight": np.float32(self.code_weight),
        }


def initial_codes(fc: nn.Linear, dim: int) -> np.ndarray:
    """Class codes from the classifier's own geometry: W's rows on their top
    principal directions, so classes that look alike start with similar codes."""
    weight = fc.weight.detach().numpy().astype(np.float64)
    centred = weight - weight.mean(axis=0)
    _, _, right = np.linalg.svd(centred, full_matrices=False)
    codes = centred @ right[:dim].T
    return (codes / np.linalg.norm(codes, axis=1, keepdims=True)).astype(np.float32)


def rank_loss(vectors: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """sum_{j != y} max(0, margin - t_y.z + t_j.z), averaged over the batch."""
    scores = vectors @ labels.T
    true = scores.gather(1, targets[:, None])
    hinge = F.relu(MARGIN - true + scores)
    hinge = hinge.scatter(1, targets[:, None], 0.0)
    return hinge.sum(dim=1).mean()


@dataclass
class PseudoFeatures:
    """Draws class-conditional pseudo pooled-features from the classifier's weights."""

    mean: torch.Tensor  # (1280,)
    spread: torch.Tensor  # (1280,)
    directions: torch.Tensor  # (1000, 1280) unit rows of W
    neighbour_probs: torch.Tensor  # (1000, 1000) chance of each similar class
    strength: float = 6.0
    noise: float = 1.3
    mix: float = 1.2

    @classmethod
    def from_classifier(cls, classifier: nn.Module, seed: int = 0) -> PseudoFeatures:
        bn = classifier._bn1
        generator = torch.Generator().manual_seed(seed)
        gamma, beta = bn.weight.detach().abs(), bn.bias.detach()
        # activations after batch norm follow N(beta, gamma^2); ReLU6 clips them
        samples = (beta + gamma * torch.randn(20_000, len(beta), generator=generator)).clamp(0, 6)
        directions = F.normalize(classifier._fc.weight.detach(), dim=1)
        similarity = directions @ directions.T
        similarity.fill_diagonal_(-torch.inf)
        return cls(samples.mean(0), samples.std(0), directions, torch.softmax(similarity / 0.05, dim=1))

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        targets = torch.randint(0, len(self.directions), (n,), generator=generator)
        neighbours = torch.multinomial(self.neighbour_probs[targets], 1, generator=generator)[:, 0]
        strength = self.strength * (0.5 + torch.rand(n, 1, generator=generator))
        second = strength * self.mix * torch.rand(n, 1, generator=generator)
        noise = self.noise * self.spread * torch.randn(n, len(self.mean), generator=generator)
        features = (
            self.mean + noise + strength * self.directions[targets] + second * self.directions[neighbours]
        )
        return features.clamp(0, 6), targets


def train_head(
    head: DeviseHead,
    pseudo: PseudoFeatures,
    steps: int,
    batch_size: int = 256,
    learning_rate: float = 0.002,
    seed: int = 1,
    log_every: int = 200,
) -> None:
    optimiser = torch.optim.Adam([head.codes], lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        features, targets = pseudo.sample(batch_size, generator)
        loss = rank_loss(head(features), head.label_vectors(), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if log_every and step % log_every == 0:
            print(f"  step {step:5d}  rank loss {loss.item():.4f}")
