"""Stage 2 (semantics) for every backend: targets, shared heads, schedule and losses.

A backend supplies, per ray of a batch, the composited E-dim attention output
``h`` (decoded here once per ray, exact because the decoder is linear), the
composited label code and the colour. Everything else, the CLIP targets at the
ray pixels, the adapter, SCT, label cross-entropy and text augmentation, is
computed here from :mod:`laser_gs.semantics`, so both backends train with the
same losses and schedule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from laser_gs.data.scene import Scene
from laser_gs.features.precomputed import FeatureSet
from laser_gs.semantics.adapter import Adapter, self_cross_loss
from laser_gs.semantics.attention import TransientQueryAttention
from laser_gs.semantics.label import LabelField, label_ce_loss
from laser_gs.semantics.calibration import PromptOffsets
from laser_gs.semantics.losses import distillation_loss, segmentation_logits, text_aug_loss, text_aug_targets
from laser_gs.settings import (AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range,
                               SHARE, Settings, bounded, schedule)


@dataclass
class SemanticSettings(Settings):
    """Stage 2 (semantics): schedule, widths, loss weights and module switches, shared by every backend.

    Paper section 4.1; the per-scene weights of the authors' code vary. Every module but text
    augmentation is on by default (see ``use_text_aug``).
    """

    method: Literal["train", "lift"] = "train"
    """``train``: the paper's stage 2 (distillation, adapter + SCT, label volume). ``lift``: no training; the
    CLIP features of every view are averaged onto the representation with its rendering weights right after
    stage 1 (seconds; backends that support it), and rendered as they are. No label volume in that case."""
    iters: int = bounded(15000, AT_LEAST_ONE)
    """Stage 2 steps (method ``train``)."""
    joint_start: int = schedule(5000)
    """Step within stage 2 from which a backend's appearance fine-tunes with the RGB loss (tensorf; a backend
    that declares no joint-phase parameters trains on unchanged). A phase change that changes what trains
    starts fresh optimizers, as the authors' code does."""
    sct_start: int = schedule(8000)
    """Step within stage 2 from which self-cross-training adds its cross terms (Eq. 9) and the adapter
    reads the rendered features."""
    lr_heads: float = bounded(1e-3, POSITIVE)
    """Learning rate of the shared heads (attention, label lift, adapter) and of the semantic field's MLP."""
    lr_decay: float = bounded(0.1, Range(0, 1, lo_open=True))
    """Learning rates fall by this factor over the stage (exponentially; restarting when optimizers are
    rebuilt, as TensoRF). 1.0 keeps them constant."""
    batch_size: int = bounded(2048, AT_LEAST_ONE)
    """Samples per step: rays (tensorf) or Gaussians (gsplat) whose features the losses compare."""
    embed_dim: int = bounded(48, AT_LEAST_ONE)
    """Width E of the transient query attention (what is composited per pixel)."""
    point_dim: int = bounded(64, AT_LEAST_ONE)
    """Width of the per-point feature that feeds the attention."""
    code_dim: int = bounded(16, AT_LEAST_ONE)
    """Width of the label code per point (lifted to CLIP width after compositing)."""
    w_feat: float = bounded(1.0, NON_NEGATIVE)
    """Weight of the feature distillation loss (Eq. 3)."""
    w_rel: float = bounded(0.8, NON_NEGATIVE)
    """Weight of the label-volume cross-entropy (Eq. 20)."""
    w_sct: float = bounded(1.0, NON_NEGATIVE)
    """Weight of the self-cross-training loss (Eq. 9)."""
    w_aug: float = bounded(0.6, NON_NEGATIVE)
    """Weight of the text-augmentation loss (Eq. 23)."""
    w_rgb: float = bounded(1.0, NON_NEGATIVE)
    """Weight of the RGB loss during joint fine-tuning."""
    alpha: float = bounded(0.2, SHARE)
    """Adapter residual ratio (Eq. 8)."""
    beta: float = bounded(0.3, SHARE)
    """SCT self ratio (Eq. 9)."""
    gamma: float = bounded(0.5, NON_NEGATIVE)
    """CLIP share of the label ensemble (Eq. 20)."""
    tau: float = bounded(0.2, POSITIVE)
    """Temperature of the class probabilities."""
    use_adapter: bool = True
    """Adapter on the CLIP targets (Table 4 ablation switch)."""
    use_sct: bool = True
    """Self-cross-training (needs the adapter)."""
    use_attention: bool = True
    """Transient query attention over the point set (off: its query map alone)."""
    use_label: bool = True
    """Label volume and its cross-entropy."""
    target_ema: float = bounded(0.0, Range(0, 1, hi_open=True))
    """Momentum of a slowly moving copy of the adapter that makes the distillation and label targets
    (``A(F)``) once SCT starts: 0 uses the adapter itself (the paper), 0.99 a mean teacher that follows it
    slowly, so self-generated targets cannot lock in whatever state the field has when SCT starts."""
    label_start: int = schedule(0)
    """Step within stage 2 from which the label cross-entropy applies (0: from the start)."""
    calibrate: bool = True
    """After stage 2 (or the lift), offset the score of each class that wins no region of the scene's training
    views just enough that it wins the region it is closest to winning (laser_gs.semantics.calibration):
    repairs a prompt CLIP scores too low on its object in every view; a no-op when every class wins a region."""
    use_text_aug: bool = False
    """Text augmentation loss. Off by default: on our synthetic scene it cost 19.5 mIoU (93.1 -> 73.6,
    docs/benchmarks.md); ``laser train --text-aug`` turns it on."""


class SemanticHeads(nn.Module):
    """The shared modules a backend's semantic field is built from.

    ``attention`` maps per-point features ``[P, point_dim]`` to ``[P, E]`` and decodes
    composited ``[R, E]`` to CLIP space ``[R, D]``; ``label`` lifts composited label
    codes ``[R, code_dim]``; ``adapter`` denoises CLIP and (from ``sct_start``) rendered features.
    """

    def __init__(self, cfg: SemanticSettings, dim: int):
        super().__init__()
        self.dim = dim
        self.attention = TransientQueryAttention(cfg.point_dim, embed_dim=cfg.embed_dim, out_dim=dim)
        self.label = LabelField(cfg.code_dim, dim)
        self.adapter = Adapter(dim, alpha=cfg.alpha)
        # the slowly moving copy of the adapter that makes targets when ``target_ema`` > 0 (never trained)
        self.adapter_ema = copy.deepcopy(self.adapter).requires_grad_(False)
        #: per-prompt logit offsets of the scene's class calibration (laser_gs.semantics.calibration)
        self.prompt_offsets = PromptOffsets()
        self.cfg = cfg

    @property
    def cfg(self) -> SemanticSettings:
        return self._cfg

    @cfg.setter
    def cfg(self, value: SemanticSettings) -> None:
        """Settings of this invocation (switches, ratios); a resumed run may change them, so alpha follows."""
        self._cfg = value
        self.adapter.alpha = self.adapter_ema.alpha = value.alpha

    def load_weights(self, state: dict[str, Tensor]) -> None:
        """``load_state_dict``, also for states saved before the adapter had its slow copy (it starts as a copy
        of the adapter, which is what a new run does too)."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("adapter_ema.") for k in missing):
            self.load_state_dict(state)  # raises with the usual message
        if missing:
            self.adapter_ema.load_state_dict(self.adapter.state_dict())

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter the optimizers train (not the adapter's slow copy)."""
        return [p for name, p in self.named_parameters() if not name.startswith("adapter_ema.")]

    @torch.no_grad()
    def after_step(self) -> None:
        """Move the adapter's slow copy towards the adapter (``target_ema`` momentum); called after each
        applied stage 2 step."""
        m = self.cfg.target_ema
        if m <= 0:
            return
        for slow, fast in zip(self.adapter_ema.parameters(), self.adapter.parameters()):
            slow.mul_(m).add_(fast.detach(), alpha=1.0 - m)

    def target_adapter(self) -> Adapter:
        """The adapter that makes distillation and label targets: the slow copy when ``target_ema`` > 0."""
        return self.adapter_ema if self.cfg.target_ema > 0 else self.adapter

    def point_embedding(self, x: Tensor, weight: Tensor | None = None, chunk: int = 65536) -> Tensor:
        """``[P, point_dim] -> [P, E]``: attention over the point set (or the query map alone when ablated)."""
        if not self.cfg.use_attention:
            return self.attention.query(x)
        return self.attention(x, weight, chunk=chunk, decode=False)

    def decode(self, h: Tensor) -> Tensor:
        """Composited ``[..., E]`` -> CLIP-space features ``[..., D]``."""
        return self.attention.decode(h)

    def class_directions(self, text: Tensor) -> Tensor:
        """``[C, E]`` rows ``U^T t_c / |t_c|``: ``h @ rows.T`` are the decoded features' dot products with the text.

        Per point these scores composite like colours, and a pixel's argmax over them is the argmax
        of its cosine logits (the feature norm is a common positive factor), so a label map needs
        C channels, not E.
        """
        U = self.attention.unzip.weight  # [D, E]
        return F.normalize(text.to(U.dtype), dim=-1) @ U

    def feature_logits(self, h: Tensor, text: Tensor) -> Tensor:
        """Cosine logits ``cos(decode(h), T)`` ``[..., C]`` without forming the ``D``-dim features.

        The decoder is a bias-free linear map ``U`` (``[D, E]``), so ``<U h, t> = h . (U^T t)`` and
        ``|U h|^2 = h^T (U^T U) h``: per pixel this costs ``E (C + E)`` instead of ``D (E + C)``
        multiply-adds, the same result as :func:`segmentation_logits` on :meth:`decode` up to rounding.
        """
        U = self.attention.unzip.weight  # [D, E]
        proj = h @ self.class_directions(text).T  # [..., C]
        norm2 = ((h @ (U.T @ U)) * h).sum(-1, keepdim=True)
        return proj / norm2.clamp_min(1e-24).sqrt()

    def class_offsets(self, text: Tensor) -> Tensor | None:
        """``[C]`` calibration offsets of the rows of ``text`` ``[C, D]`` (on its device), None when all are 0."""
        if not self.prompt_offsets:
            return None
        offsets = self.prompt_offsets.for_text(text)
        return offsets if bool(offsets.any()) else None


class FeatureTargets:
    """CLIP feature grids of the views, sampled at ray pixels (bilinear, ``align_corners=False``).

    Args:
        features: the validated feature set (grids per image name, text embeddings).
        scene: the scene (image size, names).
        device: where targets live.
    """

    def __init__(self, features: FeatureSet, scene: Scene, device: torch.device | str = "cpu"):
        grids = [features.grids[name] for name in scene.image_names]
        shapes = {tuple(g.shape) for g in grids}
        if len(shapes) != 1:
            raise ValueError(f"feature grids of one scene must share a size, got {sorted(shapes)}")
        self.grids = torch.stack(grids).to(device)  # [V, h, w, D]
        self.dim = features.dim
        self.width, self.height = scene.width, scene.height
        self.text = features.text.to(device) if features.text is not None else None
        self.text_aug = features.text_aug.to(device) if features.text_aug is not None else None
        self.aug = text_aug_targets(self.grids, self.text_aug) if self.text_aug is not None else None

    def basis(self, k: int) -> Tensor:
        """``[D, k]`` orthonormal basis of the ``k`` strongest directions of all tokens of all views (uncentred
        SVD): features projected on it keep their cosines to the text up to what the other directions hold."""
        tokens = self.grids.reshape(-1, self.dim).float()
        if tokens.shape[0] > 65536:  # a fixed subsample bounds the cost on large scenes
            tokens = tokens[torch.randperm(tokens.shape[0], generator=torch.Generator().manual_seed(0))[:65536]
                            .to(tokens.device)]
        _, _, vh = torch.linalg.svd(tokens, full_matrices=False)
        return vh[:min(k, self.dim)].T.contiguous()

    def sample_table(self, table: Tensor, view: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """Sample any per-token ``[V, h, w, K]`` table (e.g. the grids in a basis) at ray pixels."""
        return self._bilinear(table, view, u, v)

    def _bilinear(self, table: Tensor, view: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """Sample ``table`` ``[V, h, w, K]`` at pixel coordinates; edge values beyond the border."""
        _, h, w, _ = table.shape
        gx = (u / self.width * w - 0.5).clamp(0, w - 1)
        gy = (v / self.height * h - 0.5).clamp(0, h - 1)
        x0, y0 = gx.floor().long().clamp(max=w - 1), gy.floor().long().clamp(max=h - 1)
        x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
        fx, fy = (gx - x0)[:, None], (gy - y0)[:, None]
        return ((1 - fx) * (1 - fy) * table[view, y0, x0] + fx * (1 - fy) * table[view, y0, x1]
                + (1 - fx) * fy * table[view, y1, x0] + fx * fy * table[view, y1, x1])

    def sample(self, view: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor | None]:
        """CLIP features ``[R, D]`` and text-augmentation targets ``[R, C]`` (or None) at the rays."""
        clip = self._bilinear(self.grids, view, u, v)
        aug = self._bilinear(self.aug, view, u, v) if self.aug is not None else None
        return clip, aug


def semantic_losses(heads: SemanticHeads, cfg: SemanticSettings, step: int, h: Tensor, label_code: Tensor,
                    clip: Tensor, aug: Tensor | None, text: Tensor | None) -> tuple[Tensor, dict[str, float]]:
    """Total stage 2 loss (without the RGB term) and its parts for the progress bar.

    Args:
        heads: the shared semantic modules.
        cfg: weights, schedule and ablation switches.
        step: step within stage 2 (drives SCT).
        h: ``[R, E]`` composited attention outputs of the rays.
        label_code: ``[R, code_dim]`` composited label codes.
        clip: ``[R, D]`` CLIP features at the ray pixels.
        aug: ``[R, C]`` text-augmentation targets, or None.
        text: ``[C, D]`` class text embeddings, or None (then only distillation and SCT apply).
    """
    rendered = heads.decode(h)
    sct = cfg.use_adapter and cfg.use_sct and step >= cfg.sct_start
    if cfg.use_adapter:
        a_clip = heads.adapter(clip)
        target = a_clip.detach() if cfg.target_ema <= 0 else heads.target_adapter()(clip).detach()
        pred = heads.adapter(rendered) if sct else rendered
    else:
        a_clip, target, pred = clip, clip, rendered
    parts: dict[str, Tensor] = {"feat": cfg.w_feat * distillation_loss(pred, target)}
    if cfg.use_adapter:
        parts["sct"] = cfg.w_sct * self_cross_loss(heads.adapter, clip, rendered, cfg.beta, cross=sct)
    if text is not None and cfg.use_label and step >= cfg.label_start:
        label = heads.label(label_code)
        parts["rel"] = cfg.w_rel * label_ce_loss(label, segmentation_logits(target, text),
                                                 segmentation_logits(pred, text), text, cfg.gamma, cfg.tau)
    if text is not None and aug is not None and cfg.use_adapter and cfg.use_text_aug:
        parts["aug"] = cfg.w_aug * text_aug_loss(segmentation_logits(a_clip, text), aug)
    total = torch.stack(list(parts.values())).sum()
    return total, {k: float(v.detach()) for k, v in parts.items()}


def rgb_loss(pred: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(pred, target)
