"""Synthetic dense "CLIP-like" features from exact label maps.

Lets the whole pipeline run, and be measured, without CLIP weights. The noise
model imitates what makes real dense CLIP features hard to segment from:

* **token-grid resolution**: one feature per ``patch x patch`` cell (ViT-B/16),
  the class mixture of a cell is its area fraction (boundary mixing), plus a
  little leakage from neighbouring tokens (attention context);
* **view-inconsistent errors**: per view, a few smooth blobs of tokens where
  the class evidence is pulled towards a confusable class (the two similar-red
  objects confuse each other; others a random class per view). Different views
  err in different places, which is what multi-view fusion can fix;
* **token noise**: white and spatially-correlated noise in feature space;
* **modality gap**: text embeddings share a direction absent from image
  features, so image-text cosines are small (about 0.2 to 0.4, as with CLIP),
  carry a class-specific bias, and the repeated-prompt ("augmented") text
  embeddings differ slightly from the plain ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class FeatureNoise:
    """Knobs of the synthetic feature model (defaults make the 2D teacher clearly imperfect)."""

    patch: int = 16
    neighbour_mix: float = 0.25
    error_fraction: float = 0.14
    error_strength: float = 0.75
    token_noise: float = 0.3
    smooth_noise: float = 0.1
    class_similarity: float = 0.55
    pair_similarity: float = 0.85
    similar_pairs: tuple[tuple[int, ...], ...] = ((2, 3),)  # confusable groups (pairs or more) of classes
    text_alignment: float = 0.45
    text_noise: float = 0.08
    aug_text_noise: float = 0.1


def _unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _smooth_field(shape: tuple[int, ...], sigma: float, g: torch.Generator) -> Tensor:
    """Gaussian-blurred white noise ``[..., h, w]``, unit variance per position."""
    x = torch.randn(*shape, generator=g)
    radius = max(1, int(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    k = k / k.sum()
    lead = x.shape[:-2]
    y = x.reshape(-1, 1, *x.shape[-2:])
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    y = y.reshape(*lead, *x.shape[-2:])
    return (y - y.mean()) / y.std().clamp_min(1e-6)


def class_embeddings(num_classes: int, dim: int, noise: FeatureNoise, g: torch.Generator) -> Tensor:
    """``[C, D]`` unit image-side class embeddings with a shared component and similar pairs."""
    common = _unit(torch.randn(dim, generator=g))
    own = _unit(torch.randn(num_classes, dim, generator=g))
    a = noise.class_similarity ** 0.5
    emb = a * common + (1 - noise.class_similarity) ** 0.5 * own
    for group in noise.similar_pairs:
        if all(k < num_classes for k in group):
            shared = _unit(torch.randn(dim, generator=g))
            # cos(e_i, e_j) ~ class_similarity + (1 - class_similarity) * pair_similarity within a group
            p = noise.pair_similarity ** 0.5
            rest = (1 - noise.pair_similarity) ** 0.5
            for k in group:
                emb[k] = a * common + (1 - noise.class_similarity) ** 0.5 * (p * shared + rest * own[k])
    return _unit(emb)


def text_embeddings(image_emb: Tensor, noise: FeatureNoise, g: torch.Generator, aug_model: str = "noise"
                    ) -> tuple[Tensor, Tensor | None]:
    """Plain and augmented ``[C, D]`` unit text embeddings across a modality gap.

    ``aug_model``: ``"noise"`` (the plain text plus a little noise: carries no information, earlier
    versions' only model), ``"sharper"`` (the repeated prompt modelled as text nearer its object's image
    features: half the class bias, 1.5x the alignment; an assumption about CLIP, documented as such) or
    ``"none"`` (no augmented embeddings). The random draws are the same for all three, so the other
    outputs of the generator do not depend on the choice.
    """
    C, D = image_emb.shape
    gap = _unit(torch.randn(D, generator=g))
    bias = torch.randn(C, D, generator=g) / D ** 0.5
    text = _unit(gap + noise.text_alignment * image_emb + noise.text_noise * D ** 0.5 * bias / 4)
    jitter = _unit(torch.randn(C, D, generator=g))
    if aug_model == "none":
        return text, None
    if aug_model == "sharper":
        return text, _unit(gap + 1.5 * noise.text_alignment * image_emb + noise.text_noise * D ** 0.5 * bias / 8)
    if aug_model != "noise":
        raise ValueError(f"unknown text augmentation model {aug_model!r}; choose none, sharper or noise")
    return text, _unit(text + noise.aug_text_noise * jitter)


def label_mixtures(labels: Tensor, num_classes: int, noise: FeatureNoise) -> Tensor:
    """``[N, h, w, C]`` class fractions per token cell, with neighbour leakage."""
    N, H, W = labels.shape
    h, w = max(1, round(H / noise.patch)), max(1, round(W / noise.patch))
    onehot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()
    mix = F.adaptive_avg_pool2d(onehot, (h, w))
    blurred = F.avg_pool2d(F.pad(mix, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    mix = (1 - noise.neighbour_mix) * mix + noise.neighbour_mix * blurred
    return mix.permute(0, 2, 3, 1)


def synthesize_features(labels: Tensor, num_classes: int, dim: int, noise: FeatureNoise | None = None,
                        seed: int = 0, text_aug: str = "noise"
                        ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
    """Features for every view.

    Args:
        labels: ``[N, H, W]`` int64 class per pixel.
        num_classes: C.
        dim: feature width D.
        noise: the noise model.
        seed: RNG seed (features are a pure function of labels, seed and noise).
        text_aug: the augmented-text model (see :func:`text_embeddings`).

    Returns:
        per-view ``[h, w, D]`` float16 grids, ``[C, D]`` text and ``[C, D]`` augmented text embeddings (or None).
    """
    noise = noise or FeatureNoise()
    g = torch.Generator().manual_seed(10_000 + seed)
    emb = class_embeddings(num_classes, dim, noise, g)
    text, text_aug_emb = text_embeddings(emb, noise, g, text_aug)

    mix = label_mixtures(labels, num_classes, noise)  # [N, h, w, C]
    N, h, w, C = mix.shape
    # View-inconsistent confusion: a partner class per class and view, applied in smooth blobs.
    partner = torch.empty(N, C, dtype=torch.long)
    for v in range(N):
        others = torch.randint(0, C - 1, (C,), generator=g)
        partner[v] = others + (others >= torch.arange(C)).long()  # any class but itself
    for group in noise.similar_pairs:  # a group's members are confused with each other (cyclically)
        if all(k < C for k in group):
            for a, b in zip(group, group[1:] + group[:1]):
                partner[:, a] = b
    field = _smooth_field((N, h, w), sigma=1.2, g=g)
    thresh = torch.quantile(field.reshape(N, -1), 1 - noise.error_fraction, dim=1)
    blob = (field > thresh[:, None, None]).float()[..., None] * noise.error_strength  # [N, h, w, 1]
    swapped = torch.zeros_like(mix)
    swapped.scatter_add_(3, partner[:, None, None, :].expand(N, h, w, C), mix)
    mix = (1 - blob) * mix + blob * swapped

    feats = mix @ emb  # [N, h, w, D]
    # Per-dimension noise std is independent of D, so the projection of the noise onto any
    # class direction (what decides the argmax) is the same for D = 32 and D = 512.
    per_dim = 4.0 / 512 ** 0.5
    feats = feats + noise.token_noise * per_dim * torch.randn(N, h, w, dim, generator=g)
    smooth = _smooth_field((N, dim, h, w), sigma=2.0, g=g).permute(0, 2, 3, 1) * per_dim
    feats = feats + noise.smooth_noise * smooth
    # CLIP tokens are not normalised and carry a large shared offset.
    feats = 3.0 * feats
    return ([f.numpy().astype(np.float16) for f in feats], text.numpy(),
            text_aug_emb.numpy() if text_aug_emb is not None else None)


def teacher_predictions(grid: Tensor, text: Tensor, size: tuple[int, int]) -> Tensor:
    """``[H, W]`` argmax class of bilinearly upsampled features against text (paper Eq. 5).

    Args:
        grid: ``[h, w, D]`` feature grid.
        text: ``[C, D]`` unit text embeddings.
        size: ``(H, W)``.
    """
    up = F.interpolate(grid.permute(2, 0, 1)[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    logits = torch.einsum("dhw,cd->chw", _unit(up.permute(1, 2, 0)).permute(2, 0, 1), text)
    return logits.argmax(0)
