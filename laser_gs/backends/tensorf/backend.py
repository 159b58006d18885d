"""The ``tensorf`` backend: the paper's TensoRF-VM field, trained in two stages.

Stage 1 fits density and appearance to the photos (grid upsampling, occupancy
mask, TV or L1 regularisers). Stage 2 freezes density and trains the semantic
branch with the shared modules of :mod:`laser_gs.training.semantic`,
unfreezing appearance at ``joint_start`` with a fresh optimizer (section 4.1).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor

from laser_gs.atomic import atomic_write_text
from laser_gs.backends.registry import MODEL_FILE, Backend, register_backend
from laser_gs.backends.tensorf.config import TensoRFConfig, preset
from laser_gs.backends.tensorf.field import TensoRFField, resolution_for
from laser_gs.backends.tensorf.render import RayGeometry, composite, march, num_samples
from laser_gs.backends.tensorf.sampling import OccupancyGrid, ndc_aabb, ndc_rays, ndc_scale
from laser_gs.data.cameras import Cameras
from laser_gs.data.scene import Scene
from laser_gs.features.precomputed import FeatureSet
from laser_gs.evaluation import quick_miou
from laser_gs.memory import fit_chunk, peak_memory_mb
from laser_gs.metrics import psnr
from laser_gs.training.checkpoint import load_latest, save_step
from laser_gs.training.loop import LoopLog, Stage, StepResult, all_finite, make_console, run_stages
from laser_gs.training.rays import RayBatcher, step_generator
from laser_gs.training.schedule import decayed_lr, resolve_device, scale_steps, split_iterations
from laser_gs.training.semantic import FeatureTargets, SemanticHeads, rgb_loss, semantic_losses

def build_config(run_config: dict[str, Any], has_features: bool) -> TensoRFConfig:
    """The preset, with ``--iters`` shared across the stages and ``backend_options`` overrides applied."""
    cfg = preset(run_config.get("preset") or "fast")
    opts = dict(run_config.get("backend_options") or {})
    sem_over = opts.pop("semantic", None) or {}
    cfg = TensoRFConfig.from_dict({**cfg.to_dict(), **{k: v for k, v in opts.items() if k in cfg.to_dict()}})
    cfg.semantic = replace(cfg.semantic, **{k: v for k, v in sem_over.items() if hasattr(cfg.semantic, k)})
    total = run_config.get("iters")
    if total:
        if has_features:
            n1, n2 = split_iterations(int(total), [cfg.iters, cfg.semantic.iters])
        else:
            n1, n2 = int(total), cfg.semantic.iters
        sem = cfg.semantic
        cfg.upsample_at = scale_steps(cfg.upsample_at, cfg.iters, n1)
        cfg.occupancy_at = scale_steps(cfg.occupancy_at, cfg.iters, n1)
        cfg.semantic = replace(sem, iters=n2, joint_start=round(sem.joint_start * n2 / sem.iters),
                               sct_start=round(sem.sct_start * n2 / sem.iters))
        cfg.iters = n1
    return cfg


@register_backend("tensorf")
class TensoRFBackend(Backend):
    """TensoRF VM field + shared semantic heads."""

    def __init__(self) -> None:
        self.cfg: TensoRFConfig | None = None
        self.field: TensoRFField | None = None
        self.heads: SemanticHeads | None = None
        self.geometry: RayGeometry | None = None
        self.occupancy: OccupancyGrid | None = None
        self.device = torch.device("cpu")
        self.classes: list[str] = []
        self.text: Tensor | None = None
        self.resolutions: list[list[int]] = []

    # ------------------------------------------------------------------ construction
    def _build(self, cfg: TensoRFConfig, geometry: RayGeometry, resolution: list[int], dim: int | None) -> None:
        self.cfg, self.geometry = cfg, geometry
        sem = cfg.semantic
        self.field = TensoRFField(resolution, cfg.density_comps, cfg.app_comps, cfg.app_dim, cfg.mlp_width,
                                  sem.point_dim, sem.code_dim, relu_density=geometry.ndc,
                                  semantic_comps=cfg.semantic_comps).to(self.device)
        self.heads = SemanticHeads(sem, dim).to(self.device) if dim else None
        self.occupancy = OccupancyGrid(resolution, self.device)

    @staticmethod
    def _geometry(scene: Scene, cfg: TensoRFConfig, background: str | None) -> RayGeometry:
        if scene.forward_facing:
            ax, ay = ndc_scale(scene.cameras)
            aabb, ndc = ndc_aabb(scene.cameras, ax, ay), True
        else:
            ax = ay = 0.0
            aabb, ndc = scene.aabb.clone().float(), False
        bg = 1.0 if (not ndc and (background or "white") == "white") else 0.0
        return RayGeometry(aabb, ndc, (ax, ay), bg, cfg.distance_scale, cfg.weight_threshold)

    def _to_device(self) -> None:
        g = self.geometry
        g.aabb = g.aabb.to(self.device)

    def _samples(self) -> tuple[int, float | None]:
        c = self.cfg
        return num_samples(self.geometry, self.field.resolution, c.step_ratio, c.ndc_samples, c.max_samples)

    # ------------------------------------------------------------------ state
    def model_state(self) -> dict[str, Any]:
        g = self.geometry
        return {
            "backend": "tensorf", "config": self.cfg.to_dict(), "resolution": list(self.field.resolution),
            "geometry": {"aabb": g.aabb.cpu(), "ndc": g.ndc, "ndc_scale": list(g.ndc_scale),
                         "background": g.background, "distance_scale": g.distance_scale,
                         "weight_threshold": g.weight_threshold},
            "dim": self.heads.dim if self.heads is not None else 0,
            "field": {k: v.cpu() for k, v in self.field.state_dict().items()},
            "heads": {k: v.cpu() for k, v in self.heads.state_dict().items()} if self.heads is not None else {},
            "occupancy": self.occupancy.mask.cpu(), "classes": list(self.classes),
            "text": self.text.cpu() if self.text is not None else None,
        }

    def load_model_state(self, state: dict[str, Any]) -> None:
        geo = state["geometry"]
        geometry = RayGeometry(geo["aabb"].float(), bool(geo["ndc"]), tuple(geo["ndc_scale"]),
                               float(geo["background"]), float(geo["distance_scale"]), float(geo["weight_threshold"]))
        self._build(TensoRFConfig.from_dict(state["config"]), geometry, list(state["resolution"]),
                    int(state["dim"]) or None)
        self._to_device()
        self._load_weights([(self.field, state["field"])]
                           + ([(self.heads, state["heads"])] if self.heads is not None else []))
        self.occupancy.mask = state["occupancy"].to(self.device)
        self.classes = list(state.get("classes") or [])
        self.text = state["text"].to(self.device) if state.get("text") is not None else None

    # ------------------------------------------------------------------ optimisation
    def _param_groups(self, phase: str) -> list[dict[str, Any]]:
        """Trainable groups per phase; everything else is frozen (``requires_grad`` off)."""
        f, h, c = self.field, self.heads, self.cfg
        for p in list(f.parameters()) + (list(h.parameters()) if h is not None else []):
            p.requires_grad_(False)
        grids = f.grid_parameters()
        nets = list(f.basis.parameters()) + list(f.rgb_mlp.parameters())
        if phase == "reconstruct":
            groups = [{"params": grids["density"] + grids["app"], "lr": c.lr_grid},
                      {"params": nets, "lr": c.lr_net}]
        else:
            sem = list(f.feature_mlp.parameters()) + list(f.label_basis.parameters()) + list(h.parameters())
            groups = [{"params": sem, "lr": c.semantic.lr_heads}, {"params": grids["label"], "lr": c.lr_grid}]
            if phase == "joint":
                groups += [{"params": grids["app"], "lr": c.lr_app_joint}, {"params": nets, "lr": c.lr_net_joint}]
        for g in groups:
            g["initial_lr"] = g["lr"]
            for p in g["params"]:
                p.requires_grad_(True)
        return groups

    def _make_optimizer(self, phase: str) -> torch.optim.Optimizer:
        self.phase = phase
        return torch.optim.Adam(self._param_groups(phase), betas=(0.9, 0.99))

    def _set_lr(self, steps_since_reset: int, stage_iters: int) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = decayed_lr(g["initial_lr"], self.cfg.lr_decay, steps_since_reset, stage_iters)

    # ------------------------------------------------------------------ training
    def fit(self, scene: Scene, config: dict[str, Any], run_dir: Path, features: FeatureSet | None = None,
            console: Console | None = None) -> LoopLog:
        console = console or make_console()
        run_dir = Path(run_dir)
        self.device = resolve_device(config.get("device", "auto"))
        cfg = build_config(config, features is not None)
        seed = int(config.get("seed", 0))
        torch.manual_seed(seed)
        geometry = self._geometry(scene, cfg, config.get("background"))
        dim = features.dim if features is not None else None
        self._build(cfg, geometry, resolution_for(geometry.aabb, cfg.voxels_init), dim)
        self._to_device()
        targets = None
        if features is not None:
            targets = FeatureTargets(features, scene, self.device)
            self.classes = list(scene.classes)
            self.text = targets.text
        final_res = resolution_for(geometry.aabb, cfg.voxels_final)
        init_res = resolution_for(geometry.aabb, cfg.voxels_init)
        # log-linear voxel counts between the first and the last upsampling (TensoRF)
        n_up = len(cfg.upsample_at)
        self.resolutions = [resolution_for(geometry.aabb, round(math.exp(v))) for v in torch.linspace(
            math.log(cfg.voxels_init), math.log(cfg.voxels_final), n_up + 1).tolist()[1:]] if n_up else []
        del final_res, init_res
        n1 = cfg.iters
        n2 = cfg.semantic.iters if targets is not None else 0
        stages = [Stage("reconstruct", 0, n1)] + ([Stage("semantics", n1, n1 + n2)] if n2 else [])
        train_views = scene.splits.get("train") or list(range(scene.num_views))
        batcher = RayBatcher(scene, train_views, self.device)
        eval_view = (scene.splits.get("test") or scene.splits.get("val") or [train_views[0]])[0]
        self.last_reset = 0
        self.optimizer = self._make_optimizer("reconstruct")
        start = 0
        latest = load_latest(run_dir, warn=lambda m: console.print(f"[yellow]warning:[/] {m}"))
        if latest is not None:
            path, state = latest
            self.load_model_state(state["model"])
            self.cfg = cfg  # settings of this invocation (e.g. ablation switches); shapes come from the checkpoint
            if self.heads is not None:
                self.heads.cfg = cfg.semantic
            self.last_reset = int(state["last_reset"])
            self.optimizer = self._make_optimizer(state["phase"])
            self.optimizer.load_state_dict(state["optimizer"])
            start = int(state["step"])
            console.print(f"resuming from {path.name} (step {start})")

        def checkpoint(step: int) -> None:
            save_step(run_dir, step, {"model": self.model_state(), "optimizer": self.optimizer.state_dict(),
                                      "phase": self.phase, "last_reset": self.last_reset, "step": step},
                      stage1_end=step == n1 and n2 > 0)

        def on_stage_start(stage: Stage, step: int) -> None:
            if stage.name == "semantics":
                phase = "joint" if step - n1 >= cfg.semantic.joint_start else "semantic"
                if self.phase != phase:
                    self.optimizer = self._make_optimizer(phase)
                    self.last_reset = n1 if phase == "semantic" else n1 + cfg.semantic.joint_start

        def step1(it: int) -> StepResult:
            g = step_generator(seed, it)
            batch = batcher.sample(cfg.batch_rays, g)
            n_samples, step_len = self._samples()
            self._set_lr(it - self.last_reset, n1)
            out = march(self.field, self.geometry, self.occupancy, batch.origins, batch.directions, n_samples, step_len,
                        generator=g)
            mse = rgb_loss(out.rgb, batch.rgb)
            decay = cfg.lr_decay ** (it / max(1, n1))
            if self.geometry.ndc:
                reg = 1e-2 * decay * (cfg.tv_density * self.field.density.tv_loss()
                                      + cfg.tv_app * self.field.app.tv_loss())
            else:
                reg = (cfg.l1_density if it < (cfg.occupancy_at or (n1,))[0] else cfg.l1_density / 2) \
                    * self.field.density.l1_loss()
            result = self._apply(mse + reg, {"mse": mse, "psnr": -10 * torch.log10(mse.detach().clamp_min(1e-10))})
            done = it + 1
            if done in cfg.occupancy_at:
                frac = self.occupancy.update(self.field.sigma, self._samples()[1] or 2.0 / n_samples,
                                             cfg.distance_scale, cfg.occupancy_threshold)
                console.log(f"step {done}: occupancy grid updated, {100 * frac:.1f}% of cells kept")
            if done in cfg.upsample_at:
                res = self.resolutions[list(cfg.upsample_at).index(done)]
                self.field.upsample(res)
                self.occupancy = self._resized_occupancy(res)
                self.optimizer = self._make_optimizer("reconstruct")
                self.last_reset = done
            return result

        def step2(it: int) -> StepResult:
            j = it - n1
            if j == cfg.semantic.joint_start and self.phase != "joint":
                self.optimizer = self._make_optimizer("joint")
                self.last_reset = it
            self._set_lr(it - self.last_reset, n2)
            g = step_generator(seed, it)
            batch = batcher.sample(cfg.semantic.batch_rays, g)
            n_samples, step_len = self._samples()
            joint = self.phase == "joint"
            out = march(self.field, self.geometry, self.occupancy, batch.origins, batch.directions, n_samples, step_len,
                        generator=g, want_rgb=joint, want_app=True, density_grad=False, app_grad=joint)
            R = batch.origins.shape[0]
            w = out.weight.detach()
            x = self.field.point_feature(out.app, out.points)
            h = composite(self.heads.point_embedding(x, w), w, out.ray_id, R)
            code = composite(self.field.label_code(out.points), w, out.ray_id, R)
            clip, aug = targets.sample(batch.view, batch.u, batch.v)
            loss, parts = semantic_losses(self.heads, cfg.semantic, j, h, code, clip, aug, targets.text)
            shown = {k: torch.tensor(v) for k, v in parts.items()}
            if joint:
                mse = rgb_loss(out.rgb, batch.rgb)
                loss = loss + cfg.semantic.w_rgb * mse
                shown["psnr"] = -10 * torch.log10(mse.detach().clamp_min(1e-10))
            return self._apply(loss, shown)

        def step(it: int) -> StepResult:
            return step1(it) if it < n1 else step2(it)

        def evaluate(done: int) -> dict[str, float]:
            with torch.no_grad():
                out = self.render(scene.cameras, eval_view, ("rgb",))
            metrics = {"test_psnr": psnr(out["rgb"].cpu(), scene.images[eval_view])}
            if done > n1 and targets is not None and scene.annotated_views and targets.text is not None:
                metrics["miou"] = quick_miou(self, scene, targets.text)  # for training curves
            return metrics

        log = run_stages(stages, start, step, checkpoint, cfg.checkpoint_every,
                         evaluate=evaluate if cfg.eval_every else None, eval_every=cfg.eval_every,
                         console=console, on_stage_start=on_stage_start,
                         state_ok=lambda: all_finite(list(self.field.parameters()) + (
                             list(self.heads.parameters()) if self.heads is not None else [])))
        self.save(run_dir / MODEL_FILE)
        atomic_write_text(run_dir / "train_log.json", json.dumps(
            {"stage_seconds": log.stage_seconds, "history": log.history, "skipped_steps": log.skipped_steps,
             "peak_memory_mb": peak_memory_mb(self.device),
             "resolved_config": cfg.to_dict()}, indent=2))
        return log

    def _resized_occupancy(self, res: list[int]) -> OccupancyGrid:
        grid = OccupancyGrid(res, self.device)
        old = self.occupancy.mask.float()[None, None]
        grid.mask = F.interpolate(old, size=(res[2], res[1], res[0]), mode="nearest")[0, 0] > 0
        return grid

    def _apply(self, loss: Tensor, shown: dict[str, Tensor]) -> StepResult:
        """Backward and step unless the loss or a gradient is not finite."""
        if not torch.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            return StepResult(applied=False)
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not all(torch.isfinite(p.grad).all() for p in params):
            self.optimizer.zero_grad(set_to_none=True)
            return StepResult(applied=False)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult({k: float(v.detach()) for k, v in shown.items()})

    # ------------------------------------------------------------------ rendering
    @torch.no_grad()
    def render(self, cameras: Cameras, index: int, outputs: tuple[str, ...] = ("rgb",),
               text: Tensor | None = None, chunk: int = 8192) -> dict[str, Tensor]:
        """Render one camera. Semantic outputs pool the attention over all points of the image."""
        want = set(outputs)
        semantic = bool(want & {"feature", "label", "logits", "segmentation"})
        if semantic and self.heads is None:
            from laser_gs.errors import LaserError
            raise LaserError("this run was trained without features (--features none); it has no semantic outputs")
        if want & {"logits", "segmentation"} and text is None:
            raise ValueError("logits and segmentation need text embeddings")
        cams = cameras.to(self.device)
        H, W = cams.height, cams.width
        origins, dirs = cams.pixel_rays(index)
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
            if semantic:
                xs.append(self.field.point_feature(out.app, out.points))
                ws.append(out.weight)
                ids.append(out.ray_id + start)
                if "label" in want:
                    codes.append(self.field.label_code(out.points))
        result: dict[str, Tensor] = {}
        if rgb:
            result["rgb"] = torch.cat(rgb).view(H, W, 3)
        result["depth"] = torch.cat(depth).view(H, W)
        result["acc"] = torch.cat(opacity).view(H, W)
        if semantic:
            x, w, ray_id = torch.cat(xs), torch.cat(ws), torch.cat(ids)
            h = composite(self.heads.point_embedding(x, w), w, ray_id, H * W)
            if "feature" in want:
                result["feature"] = self.heads.decode(h).view(H, W, -1)
            if "label" in want:
                result["label"] = self.heads.label(composite(torch.cat(codes), w, ray_id, H * W)).view(H, W, -1)
            if "logits" in want:
                result["logits"] = self.heads.feature_logits(h, text.to(self.device)).view(H, W, -1)
                result["segmentation"] = result["logits"].argmax(dim=-1)
            elif "segmentation" in want:  # the argmax needs only the C class scores
                result["segmentation"] = (h @ self.heads.class_directions(text.to(self.device)).T).argmax(-1).view(H, W)
        return {k: v for k, v in result.items() if k in want}

    @torch.no_grad()
    def surface_points(self, cameras: Cameras, views: list[int], scale: float = 0.25,
                       text: Tensor | None = None) -> dict[str, Tensor]:
        """Expected-depth surface points of rays of ``views`` rendered at ``scale`` resolution.

        Returns ``xyz`` ``[P, 3]`` (world), ``rgb`` ``[P, 3]`` and, with semantics, ``feature`` and
        ``label`` ``[P, D]``; rays with opacity below 0.5 (background) are dropped.
        """
        W, H = max(1, round(cameras.width * scale)), max(1, round(cameras.height * scale))
        outputs = ("rgb", "depth") + (("feature", "label") if self.heads is not None else ())
        acc: dict[str, list[Tensor]] = {}
        for v in views:
            K = cameras.K[v:v + 1].clone()
            K[:, 0] *= W / cameras.width
            K[:, 1] *= H / cameras.height
            cam = Cameras(cameras.c2w[v:v + 1], K, W, H).to(self.device)
            out = self.render(cam, 0, outputs + ("acc",))
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
            for k in outputs:
                if k != "depth":
                    acc.setdefault(k, []).append(out[k].reshape(-1, out[k].shape[-1])[keep])
        return {k: torch.cat(v).cpu() for k, v in acc.items()}

    def semantic_points(self, cameras: Cameras, views: list[int], scale: float = 0.25) -> dict[str, Tensor]:
        """Expected-depth surface points of ``views`` (see :meth:`surface_points`)."""
        return self.surface_points(cameras, views, scale)

    def export(self, path: Path, prompts: list[str] | None = None, text: Tensor | None = None,
               color_by_label: bool = False, keep: Tensor | None = None, views: list[int] | None = None,
               cameras: Cameras | None = None, scale: float = 0.25, **options: Any) -> list[Path]:
        """A labeled point cloud of the surfaces seen by ``views`` of ``cameras`` (x y z rgb label score)."""
        from laser_gs.export import export_points, point_labels

        if cameras is None or views is None:
            raise ValueError("tensorf export needs the scene cameras and views")
        pts = self.surface_points(cameras, views, scale)
        if keep is not None:
            pts = {k: v[keep] for k, v in pts.items()}
        labels = scores = None
        if text is not None and "feature" in pts:
            labels, scores = point_labels(pts["feature"], pts["label"], text.cpu())
        return export_points(Path(path), pts["xyz"], pts["rgb"], labels, scores, prompts, color_by_label)


__all__ = ["TensoRFBackend", "MODEL_FILE", "build_config"]
