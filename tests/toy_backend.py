"""A test-only backend: a dense voxel grid of density and colour plus the shared semantic field.

It exists to show how small the backend protocol is (docs/method.md, "Adding a
backend"): everything about training (stages, optimizers, schedules, resume,
checkpoints, the stage-2 losses) comes from the shared trainer; this file only
says what the representation is, what trains in each phase, and how it renders.
Importing it registers ``toy-voxels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from laser_gs.backends.protocol import Backend, ParamGroup, ReconstructionLoss, SemanticBatch, Step
from laser_gs.backends.registry import register_backend
from laser_gs.export.records import PointSet
from laser_gs.semantics.field import SemanticField
from laser_gs.training.rays import RayBatcher, step_generator
from laser_gs.training.semantic import SemanticSettings
from laser_gs.training.settings import Preset, ReconstructionSettings, TrainerSettings


@dataclass
class ToySettings(ReconstructionSettings):
    """A dense grid between the scene's near and far bounds."""

    resolution: int = 32
    """Cells per axis of the density / colour grid and of the semantic field."""
    samples: int = 32
    """Samples per ray, evenly spaced between the scene's near and far depth."""
    batch_rays: int = 1024
    """Rays per stage 1 step."""
    lr: float = 0.1
    """Learning rate of the grid."""


def _fast() -> Preset:
    return Preset(ToySettings(iters=150), SemanticSettings(iters=100, joint_start=100, sct_start=60, batch_size=256,
                                                           lr_decay=1.0), TrainerSettings(checkpoint_every=50))


@register_backend("toy-voxels")
class ToyVoxelBackend(Backend):
    settings_class = ToySettings
    presets = {"fast": _fast}

    def __init__(self) -> None:
        super().__init__()
        self.grid: nn.Parameter | None = None  # [1, 4, R, R, R]: density logit, RGB logits
        self.semantic: SemanticField | None = None
        self.box: Tensor | None = None  # [2, 3] world box of the grid
        self.depth_range = (0.0, 1.0)
        self.batcher: RayBatcher | None = None

    # ---------------------------------------------------------------- representation and state
    def setup(self, scene, settings, dim, seed) -> None:
        self.settings, R = settings, settings.model.resolution
        self.box = scene.aabb.float().to(self.device)
        self.depth_range = (float(scene.near_far[:, 0].min()), float(scene.near_far[:, 1].max()))
        self._build(R, dim)
        self.batcher = RayBatcher(scene, scene.train_views, self.device)

    def _build(self, R: int, dim: int | None) -> None:
        sem = self.settings.semantic
        self.grid = nn.Parameter(torch.zeros(1, 4, R, R, R, device=self.device))
        self.semantic = SemanticField([R] * 3, 3, sem.point_dim, sem.code_dim).to(self.device)
        self.build_heads(dim)

    def model_state(self) -> dict[str, Any]:
        return {"grid": self.grid.detach().cpu(), "semantic": self.semantic.state_dict(), "box": self.box.cpu(),
                "depth_range": list(self.depth_range)}

    def load_model_state(self, state: dict[str, Any]) -> None:
        self.box, self.depth_range = state["box"].to(self.device), tuple(state["depth_range"])
        self._build(state["grid"].shape[-1], None)
        self.grid.data.copy_(state["grid"])
        self.semantic.load_state_dict(state["semantic"])

    def parameters(self) -> list[Tensor]:
        return [self.grid, *self.semantic.parameters(), *(self.heads.parameters() if self.heads else [])]

    def param_groups(self, phase: str) -> list[ParamGroup]:
        if phase == "reconstruct":
            return [ParamGroup("grid", [self.grid], self.settings.model.lr)]
        return [ParamGroup("semantic", list(self.semantic.parameters()) + self.heads.trainable_parameters(),
                           self.settings.semantic.lr_heads)]

    # ---------------------------------------------------------------- rendering rays
    def _march(self, origins: Tensor, dirs: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``[R, 3]`` rays -> weights ``[R, S]``, normalised points ``[R, S, 3]``, colours ``[R, S, 3]``,
        rgb ``[R, 3]``."""
        S, (near, far) = self.settings.model.samples, self.depth_range
        t = torch.linspace(near, far, S, device=origins.device).expand(origins.shape[0], S)
        if generator is not None:
            t = t + (far - near) / S * torch.rand(t.shape, generator=generator).to(t.device)
        pts = origins[:, None] + t[..., None] * dirs[:, None]
        xyz = (pts - self.box[0]) / (self.box[1] - self.box[0]) * 2 - 1
        vals = F.grid_sample(self.grid, xyz.view(1, -1, 1, 1, 3), align_corners=True)[0, :, :, 0, 0].T
        vals = vals.view(*t.shape, 4)
        alpha = 1 - torch.exp(-F.softplus(vals[..., 0] - 2) * (far - near) / S * 4)
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], -1), -1)[:, :-1]
        w, colour = alpha * trans, torch.sigmoid(vals[..., 1:])
        return {"w": w, "xyz": xyz.clamp(-1, 1), "colour": colour, "rgb": (w[..., None] * colour).sum(1),
                "depth": (w * t).sum(1), "acc": w.sum(1)}

    def _semantics(self, m: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Composited ``[R, E]`` attention outputs and ``[R, K]`` label codes of marched rays (samples that
        contribute only: weight above 1e-4, as tensorf)."""
        R, S = m["w"].shape
        w = m["w"].detach().reshape(-1)
        keep = w > 1e-4
        ray = torch.arange(R, device=w.device).repeat_interleave(S)[keep]
        feat, code = self.semantic(m["xyz"].reshape(-1, 3)[keep], m["colour"].detach().reshape(-1, 3)[keep])
        h = self.heads.point_embedding(feat, w[keep])
        composite = (lambda v: v.new_zeros(R, v.shape[1]).index_add_(0, ray, w[keep, None] * v))  # noqa: E731
        return composite(h), composite(code)

    # ---------------------------------------------------------------- training pieces
    def reconstruction_loss(self, step: Step) -> ReconstructionLoss:
        g = step_generator(step.seed, step.index)
        batch = self.batcher.sample(self.settings.model.batch_rays, g)
        mse = F.mse_loss(self._march(batch.origins, batch.directions, g)["rgb"], batch.rgb)
        return ReconstructionLoss(mse, {"mse": float(mse.detach())})

    def semantic_batch(self, step: Step, targets, joint: bool) -> SemanticBatch:
        g = step_generator(step.seed, step.index)
        batch = self.batcher.sample(self.settings.semantic.batch_size, g)
        with torch.no_grad():
            m = self._march(batch.origins, batch.directions, g)
        h, code = self._semantics(m)
        clip, aug = targets.sample(batch.view, batch.u, batch.v)
        return SemanticBatch(h, code, clip, aug)

    def render_outputs(self, cameras, index, outputs, text) -> dict[str, Tensor]:
        H, W = cameras.height, cameras.width
        o, d = (x.reshape(-1, 3) for x in cameras.pixel_rays(index))
        m = self._march(o, d)
        out = {"rgb": m["rgb"].view(H, W, 3), "depth": m["depth"].view(H, W), "acc": m["acc"].view(H, W)}
        if self.heads is not None and set(outputs) & {"feature", "label", "logits", "segmentation"}:
            h, code = self._semantics(m)
            out["feature"], out["label"] = self.heads.decode(h).view(H, W, -1), self.heads.label(code).view(H, W, -1)
            if text is not None:
                out["logits"] = self.heads.feature_logits(h, text).view(H, W, -1)
                out["segmentation"] = out["logits"].argmax(-1)
        return out

    @torch.no_grad()
    def points(self, cameras, views) -> PointSet:
        """Centres of the cells whose density is high enough to be surface."""
        R = self.grid.shape[-1]
        axis = torch.linspace(-1, 1, R, device=self.device)
        zz, yy, xx = torch.meshgrid(axis, axis, axis, indexing="ij")
        xyz = torch.stack([xx, yy, zz], -1).view(-1, 3)
        vals = self.grid[0].permute(1, 2, 3, 0).reshape(-1, 4)
        keep = F.softplus(vals[:, 0] - 2) > 1.0
        xyz, colour = xyz[keep], torch.sigmoid(vals[keep, 1:])
        world = (xyz + 1) / 2 * (self.box[1] - self.box[0]) + self.box[0]
        if self.heads is None:
            return PointSet(world.cpu(), colour.cpu())
        feat, code = self.semantic(xyz, colour)
        h = self.heads.point_embedding(feat)
        return PointSet(world.cpu(), colour.cpu(), self.heads.decode(h).cpu(), self.heads.label(code).cpu())
