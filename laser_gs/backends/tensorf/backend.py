"""The ``tensorf`` backend: the paper's TensoRF-VM field, trained in two stages by the shared trainer.

Stage 1 fits density and appearance to the photos (grid upsampling, occupancy
mask, TV or L1 regularisers). Stage 2 freezes density and trains the semantic
branch with the shared modules; from ``semantic.joint_start`` appearance and the
RGB head fine-tune too (phase ``joint``, fresh optimizers as in the paper's code).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from laser_gs.backends.protocol import Backend, ParamGroup, ReconstructionLoss, SemanticBatch, Step
from laser_gs.backends.registry import register_backend
from laser_gs.backends.tensorf.config import PRESETS, TensoRFSettings
from laser_gs.backends.tensorf.field import TensoRFField, resolution_for
from laser_gs.backends.tensorf.render import RayGeometry, composite, march, num_samples
from laser_gs.backends.tensorf.sampling import OccupancyGrid, ndc_aabb, ndc_rays, ndc_scale
from laser_gs.data.cameras import Cameras
from laser_gs.data.scene import Scene
from laser_gs.data.unbounded import Contraction, scene_contraction
from laser_gs.export.records import PointSet
from laser_gs.memory import fit_chunk
from laser_gs.progress import progress
from laser_gs.training.rays import RayBatcher, step_generator
from laser_gs.training.semantic import FeatureTargets, rgb_loss
from laser_gs.training.settings import TrainingSettings


@register_backend("tensorf")
class TensoRFBackend(Backend):
    """TensoRF VM field + shared semantic heads."""

    settings_class = TensoRFSettings
    presets = PRESETS

    def __init__(self) -> None:
        super().__init__()
        self.field: TensoRFField | None = None
        self.geometry: RayGeometry | None = None
        self.occupancy: OccupancyGrid | None = None
        #: grid resolutions after each scheduled upsampling (log-linear voxel counts)
        self.resolutions: list[list[int]] = []
        self.batcher: RayBatcher | None = None  # training rays (set up from the scene)
        self.train_views: list[int] = []
        self.cameras: Cameras | None = None
        #: ``[1, E, Rz, Ry, Rx]`` lifted features in the decoder's basis (``semantic.method = "lift"``)
        self.lift_grid: Tensor | None = None

    @property
    def cfg(self) -> TensoRFSettings:
        return self.settings.model

    # ------------------------------------------------------------------ construction
    def _build(self, geometry: RayGeometry, resolution: list[int], dim: int | None) -> None:
        cfg, sem = self.cfg, self.settings.semantic
        self.geometry = geometry
        self.field = TensoRFField(resolution, cfg.density_comps, cfg.app_comps, cfg.app_dim, cfg.mlp_width,
                                  sem.point_dim, sem.code_dim, relu_density=geometry.ndc,
                                  semantic_comps=cfg.semantic_comps).to(self.device)
        self.build_heads(dim)
        self.occupancy = OccupancyGrid(resolution, self.device)
        self.geometry.aabb = self.geometry.aabb.to(self.device)

    def _geometry(self, scene: Scene) -> RayGeometry:
        cfg = self.cfg
        contraction = None
        if scene.forward_facing:
            ax, ay = ndc_scale(scene.cameras)
            aabb, ndc = ndc_aabb(scene.cameras, ax, ay), True
        else:
            ax = ay = 0.0
            aabb, ndc = scene.aabb.clone().float(), False
            if cfg.unbounded == "auto":
                contraction = scene_contraction(scene.cameras, scene.aabb, False, cfg.contract_radius_scale)
            if contraction is not None:
                aabb = torch.tensor([[-2.0] * 3, [2.0] * 3])
                self.console.log(f"unbounded 360° scene: space beyond {contraction.radius:.2f} of the rig's "
                                 "centre is contracted (mip-NeRF 360)")
        bg = 1.0 if (not ndc and scene.background == "white") else 0.0
        return RayGeometry(aabb, ndc, (ax, ay), bg, cfg.distance_scale, cfg.weight_threshold, contraction)

    def _samples(self) -> tuple[int, float | None]:
        c = self.cfg
        return num_samples(self.geometry, self.field.resolution, c.step_ratio, c.ndc_samples, c.max_samples)

    def setup(self, scene: Scene, settings: TrainingSettings, dim: int | None, seed: int) -> None:
        self.settings = settings
        cfg = self.cfg
        geometry = self._geometry(scene)
        self._build(geometry, resolution_for(geometry.aabb, cfg.voxels_init), dim)
        n_up = len(cfg.upsample_at)
        self.resolutions = [resolution_for(geometry.aabb, round(math.exp(v))) for v in torch.linspace(
            math.log(cfg.voxels_init), math.log(cfg.voxels_final), n_up + 1).tolist()[1:]] if n_up else []
        self.batcher = RayBatcher(scene, scene.train_views, self.device)
        self.train_views, self.cameras = scene.train_views, scene.cameras.to(self.device)

    # ------------------------------------------------------------------ state
    def model_state(self) -> dict[str, Any]:
        g = self.geometry
        return {"resolution": list(self.field.resolution),
                "geometry": {"aabb": g.aabb.cpu(), "ndc": g.ndc, "ndc_scale": list(g.ndc_scale),
                             "background": g.background, "distance_scale": g.distance_scale,
                             "weight_threshold": g.weight_threshold,
                             "contraction": g.contraction.to_dict() if g.contraction is not None else None},
                "field": {k: v.cpu() for k, v in self.field.state_dict().items()},
                "occupancy": self.occupancy.mask.cpu(),
                "lift_grid": self.lift_grid.cpu() if self.lift_grid is not None else None}

    def load_model_state(self, state: dict[str, Any]) -> None:
        geo = state["geometry"]
        contraction = Contraction.from_dict(geo["contraction"]) if geo.get("contraction") else None
        geometry = RayGeometry(geo["aabb"].float(), bool(geo["ndc"]), tuple(geo["ndc_scale"]),
                               float(geo["background"]), float(geo["distance_scale"]), float(geo["weight_threshold"]),
                               contraction)
        self._build(geometry, list(state["resolution"]), None)
        self.field.load_state_dict(state["field"])
        self.occupancy.mask = state["occupancy"].to(self.device)
        self.lift_grid = state["lift_grid"].to(self.device) if state.get("lift_grid") is not None else None

    def parameters(self) -> list[Tensor]:
        return list(self.field.parameters()) + (list(self.heads.parameters()) if self.heads is not None else [])

    # ------------------------------------------------------------------ training pieces
    def param_groups(self, phase: str) -> list[ParamGroup]:
        f, c, sem = self.field, self.cfg, self.settings.semantic
        grids = f.grid_parameters()
        nets = list(f.basis.parameters()) + list(f.rgb_mlp.parameters())
        adam = dict(betas=(0.9, 0.99))
        if phase == "reconstruct":
            return [ParamGroup("grids", grids["density"] + grids["app"], c.lr_grid, c.lr_decay, **adam),
                    ParamGroup("nets", nets, c.lr_net, c.lr_decay, **adam)]
        heads = f.semantic.net_parameters() + self.heads.trainable_parameters()
        groups = [ParamGroup("semantic_nets", heads, sem.lr_heads, sem.lr_decay, **adam),
                  ParamGroup("semantic_grids", f.semantic.grid_parameters(), c.lr_grid, sem.lr_decay, **adam)]
        if phase == "joint":
            groups += [ParamGroup("app_grids", grids["app"], c.lr_app_joint, sem.lr_decay, **adam),
                       ParamGroup("nets", nets, c.lr_net_joint, sem.lr_decay, **adam)]
        return groups

    def reconstruction_loss(self, step: Step) -> ReconstructionLoss:
        cfg = self.cfg
        g = step_generator(step.seed, step.index)
        batch = self.batcher.sample(cfg.batch_rays, g)
        n_samples, step_len = self._samples()
        out = march(self.field, self.geometry, self.occupancy, batch.origins, batch.directions, n_samples, step_len,
                    generator=g)
        mse = rgb_loss(out.rgb, batch.rgb)
        if self.geometry.ndc:
            decay = cfg.lr_decay ** (step.index / max(1, step.stage_iters))
            reg = 1e-2 * decay * (cfg.tv_density * self.field.density.tv_loss() + cfg.tv_app * self.field.app.tv_loss())
        else:
            first_mask = (cfg.occupancy_at or (step.stage_iters,))[0]
            reg = (cfg.l1_density if step.index < first_mask else cfg.l1_density / 2) * self.field.density.l1_loss()
        psnr = -10 * math.log10(max(float(mse.detach()), 1e-10))
        return ReconstructionLoss(mse + reg, {"mse": float(mse.detach()), "psnr": psnr})

    def after_step(self, step: Step, optimizers: dict, aux: Any, applied: bool) -> bool:
        """Occupancy updates and grid upsampling at their scheduled stage 1 steps (new grids: new optimizers)."""
        cfg, done = self.cfg, step.index + 1
        if step.stage != "reconstruct":
            return False
        if done in cfg.occupancy_at:
            n_samples, step_len = self._samples()
            frac = self.occupancy.update(self.field.sigma, step_len or 2.0 / n_samples, cfg.distance_scale,
                                         cfg.occupancy_threshold, contraction=self.geometry.contraction,
                                         floor=self.field.density_floor)
            self.console.log(f"step {done}: occupancy grid updated, {100 * frac:.1f}% of cells kept")
        if done in cfg.upsample_at:
            res = self.resolutions[list(cfg.upsample_at).index(done)]
            self.field.upsample(res)
            self.occupancy = self._resized_occupancy(res)
            return True
        return False

    def semantic_batch(self, step: Step, targets: FeatureTargets, joint: bool) -> SemanticBatch:
        g = step_generator(step.seed, step.index)
        batch = self.batcher.sample(self.settings.semantic.batch_size, g)
        n_samples, step_len = self._samples()
        out = march(self.field, self.geometry, self.occupancy, batch.origins, batch.directions, n_samples, step_len,
                    generator=g, want_rgb=joint, want_app=True, density_grad=False, app_grad=joint)
        R = batch.origins.shape[0]
        w = out.weight.detach()
        x = self.field.semantic.point_feature(out.app, out.points)
        h = composite(self.heads.point_embedding(x, w), w, out.ray_id, R)
        code = composite(self.field.semantic.label_code(out.points), w, out.ray_id, R)
        clip, aug = targets.sample(batch.view, batch.u, batch.v)
        return SemanticBatch(h, code, clip, aug, rgb_loss(out.rgb, batch.rgb) if joint else None)

    @torch.no_grad()
    def lift(self, targets: FeatureTargets) -> None:
        """Training-free semantics: march every training view, and splat each ray's CLIP feature (in the best
        ``E``-dim basis of the views' tokens, which becomes the decoder) into a grid at the ray's samples with
        their rendering weights; the grid holds the weighted average. Rendering composites the grid's values
        like any feature and decodes once per pixel."""
        cfg, E = self.cfg, self.settings.semantic.embed_dim
        basis = targets.basis(E)
        basis = torch.cat([basis, basis.new_zeros(basis.shape[0], E - basis.shape[1])], dim=1)  # [D, E]
        table = targets.grids.float() @ basis  # [V, h, w, E]
        res = resolution_for(self.geometry.aabb, cfg.lift_voxels)  # [Rx, Ry, Rz]
        total = table.new_zeros(res[2] * res[1] * res[0], E)
        weight = table.new_zeros(res[2] * res[1] * res[0])
        n_samples, step_len = self._samples()
        size = torch.tensor(res, dtype=table.dtype, device=table.device)
        with progress(f"lifting CLIP features of {len(self.train_views)} views", len(self.train_views),
                      self.console, unit=" views") as advance:
            for v in self.train_views:
                cam = self.cameras.scaled(v, cfg.lift_scale)
                o, d = (x.reshape(-1, 3) for x in cam.pixel_rays(0))
                ys, xs = torch.meshgrid(torch.arange(cam.height, device=o.device),
                                        torch.arange(cam.width, device=o.device), indexing="ij")
                u = (xs.reshape(-1).float() + 0.5) * self.cameras.width / cam.width
                vv = (ys.reshape(-1).float() + 0.5) * self.cameras.height / cam.height
                t = targets.sample_table(table, torch.full_like(u, v, dtype=torch.long), u, vv)  # [R, E]
                for s in range(0, o.shape[0], 8192):
                    out = march(self.field, self.geometry, self.occupancy, o[s:s + 8192], d[s:s + 8192], n_samples,
                                step_len, want_rgb=False)
                    # trilinear splat (the transpose of grid_sample with align_corners=True)
                    x = ((out.points + 1) / 2 * (size - 1)).clamp(min=0)
                    x = torch.minimum(x, size - 1 - 1e-4)
                    lo, frac = x.floor().long(), x - x.floor()
                    vals = t[s:s + 8192][out.ray_id]
                    for corner in range(8):
                        off = torch.tensor([(corner >> k) & 1 for k in range(3)], device=x.device)
                        w3 = torch.where(off.bool(), frac, 1 - frac).prod(-1) * out.weight
                        i = lo + off
                        flat = (i[:, 2] * res[1] + i[:, 1]) * res[0] + i[:, 0]
                        total.index_add_(0, flat, w3[:, None] * vals)
                        weight.index_add_(0, flat, w3)
                advance()
        grid = torch.where(weight[:, None] > 0, total / weight.clamp_min(1e-12)[:, None], torch.zeros_like(total))
        self.lift_grid = grid.T.reshape(1, E, res[2], res[1], res[0]).contiguous()
        self.heads.attention.unzip.weight.copy_(basis)

    def _lifted(self, points: Tensor) -> Tensor:
        """``[P, 3]`` normalised points -> ``[P, E]`` lifted features (trilinear)."""
        g = F.grid_sample(self.lift_grid, points.view(1, -1, 1, 1, 3), mode="bilinear", align_corners=True)
        return g[0, :, :, 0, 0].T

    def _resized_occupancy(self, res: list[int]) -> OccupancyGrid:
        grid = OccupancyGrid(res, self.device)
        old = self.occupancy.mask.float()[None, None]
        grid.mask = F.interpolate(old, size=(res[2], res[1], res[0]), mode="nearest")[0, 0] > 0
        return grid

    # ------------------------------------------------------------------ rendering
    def render_outputs(self, cameras: Cameras, index: int, outputs: tuple[str, ...], text: Tensor | None,
                       chunk: int = 8192) -> dict[str, Tensor]:
        """Semantic outputs pool the attention over all points of the image (independent of ``chunk``)."""
        want = set(outputs)
        semantic = bool(want & {"feature", "label", "logits", "segmentation"})
        H, W = cameras.height, cameras.width
        origins, dirs = cameras.pixel_rays(index)
        origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
        n_samples, step_len = self._samples()
        # ~512 floats per sample cover the field's features, MLP activations and point features
        chunk = fit_chunk(chunk, bytes_per_item=n_samples * 512 * 4, minimum=64)
        rgb, depth, opacity, xs, ws, ids, codes = [], [], [], [], [], [], []
        for start in range(0, origins.shape[0], chunk):
            out = march(self.field, self.geometry, self.occupancy, origins[start:start + chunk],
                        dirs[start:start + chunk], n_samples, step_len, want_rgb="rgb" in want, want_app=semantic)
            if out.rgb is not None:
                rgb.append(out.rgb)
            depth.append(out.depth)
            opacity.append(out.acc)
            if semantic and self.lift_grid is not None:
                xs.append(self._lifted(out.points))
                ws.append(out.weight)
                ids.append(out.ray_id + start)
            elif semantic:
                xs.append(self.field.semantic.point_feature(out.app, out.points))
                ws.append(out.weight)
                ids.append(out.ray_id + start)
                if "label" in want:
                    codes.append(self.field.semantic.label_code(out.points))
        result: dict[str, Tensor] = {"depth": torch.cat(depth).view(H, W), "acc": torch.cat(opacity).view(H, W)}
        if rgb:
            result["rgb"] = torch.cat(rgb).view(H, W, 3)
        if semantic:
            x, w, ray_id = torch.cat(xs), torch.cat(ws), torch.cat(ids)
            h = composite(x if self.lift_grid is not None else self.heads.point_embedding(x, w), w, ray_id, H * W)
            if "feature" in want:
                result["feature"] = self.heads.decode(h).view(H, W, -1)
            if "label" in want:
                result["label"] = self.heads.label(composite(torch.cat(codes), w, ray_id, H * W)).view(H, W, -1)
            if "logits" in want:
                result["logits"] = self.heads.feature_logits(h, text).view(H, W, -1)
                result["segmentation"] = result["logits"].argmax(dim=-1)
            elif "segmentation" in want:  # the argmax needs only the C class scores
                result["segmentation"] = (h @ self.heads.class_directions(text).T).argmax(-1).view(H, W)
        return result

    def points(self, cameras: Cameras, views: list[int], scale: float = 0.25) -> PointSet:
        """Expected-depth surface points of the rays of ``views`` rendered at ``scale`` of their resolution.

        ``xyz`` world positions, ``rgb``, and with semantics ``feature`` / ``label``; rays with opacity below
        0.5 (background) are dropped.
        """
        outputs = ("rgb", "depth", "acc") + tuple(o for o in ("feature", "label") if self.heads is not None and
                                                  (o == "feature" or o in self.heads_available))
        acc: dict[str, list[Tensor]] = {}
        with progress(f"sampling surface points from {len(views)} views", len(views), self.console,
                      unit=" views") as advance:
            for v in views:
                self._surface_points(cameras, v, scale, outputs, acc)
                advance()
        cat = {k: torch.cat(v).cpu() for k, v in acc.items()}
        return PointSet(cat["xyz"], cat["rgb"], cat.get("feature"), cat.get("label"))

    def _surface_points(self, cameras: Cameras, v: int, scale: float, outputs: tuple[str, ...],
                        acc: dict[str, list[Tensor]]) -> None:
        """Append view ``v``'s surface points (and their outputs) to ``acc``."""
        cam = cameras.scaled(v, scale).to(self.device)
        out = self.render(cam, 0, outputs)
        o, d = cam.pixel_rays(0)
        o, d = o.reshape(-1, 3), d.reshape(-1, 3)
        t = out["depth"].reshape(-1) / out["acc"].reshape(-1).clamp_min(1e-6)
        if self.geometry.ndc:
            ax, ay = self.geometry.ndc_scale
            on, dn = ndc_rays(o, d, ax, ay)
            z = (on[:, 2] + t * dn[:, 2]).clamp(max=1 - 1e-4)
            depth_world = 2.0 / (1.0 - z)
            xyz = o + ((depth_world - o[:, 2]) / d[:, 2])[:, None] * d
        else:
            xyz = o + t[:, None] * d
        keep = out["acc"].reshape(-1) > 0.5
        acc.setdefault("xyz", []).append(xyz[keep])
        for k in ("rgb", "feature", "label"):
            if k in out:
                acc.setdefault(k, []).append(out[k].reshape(-1, out[k].shape[-1])[keep])


__all__ = ["TensoRFBackend"]
