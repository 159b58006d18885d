"""The ``gsplat`` backend: language Gaussians, rasterized with gsplat on CUDA or our CPU rasterizer.

Stage 1 fits the Gaussians to the photos (L1 + D-SSIM, densification and
pruning through gsplat's ``DefaultStrategy``). Stage 2 freezes geometry; each
Gaussian's attention input and label code come from a spatial VM field at its
centre and its appearance (``semantic_field.py``, the tensorf design), trained
with the same shared losses and schedule as ``tensorf`` against CLIP features
lifted onto the Gaussians from all training views (``lift.py``; the ray-space
variant, ``semantic_supervision = "pixels"``, renders views instead and
fine-tunes colours from ``joint_start``). Transient query attention runs over
all Gaussians; its E-dim outputs and the label codes are rasterized as extra
channels and decoded once per pixel (exact: the decoder is linear), so a 512-d
feature field costs E + code_dim channels. docs/method.md gives the reasons
and the measurements behind each choice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor, nn

from laser_gs.atomic import atomic_write_text
from laser_gs.backends.gsplat.config import GsplatConfig, preset
from laser_gs.backends.gsplat.lift import lift_to_gaussians
from laser_gs.backends.gsplat.model import SH_C0, create_params, empty_params, initial_points, pixel_footprint, sh_to_rgb
from laser_gs.backends.gsplat.raster import rasterize
from laser_gs.backends.gsplat.semantic_field import GaussianSemanticField, gaussian_appearance
from laser_gs.backends.registry import MODEL_FILE, Backend, register_backend
from laser_gs.data.cameras import Cameras
from laser_gs.data.scene import Scene
from laser_gs.errors import LaserError
from laser_gs.features.precomputed import FeatureSet
from laser_gs.evaluation import quick_miou
from laser_gs.memory import peak_memory_mb
from laser_gs.metrics import psnr
from laser_gs.training.checkpoint import load_latest, save_step
from laser_gs.training.loop import LoopLog, Stage, StepResult, all_finite, make_console, run_stages
from laser_gs.training.rays import step_generator
from laser_gs.training.schedule import decayed_lr, resolve_device, scale_steps, split_iterations
from laser_gs.training.semantic import FeatureTargets, SemanticHeads, rgb_loss, semantic_losses
from laser_gs.training.ssim import ssim

GEOMETRY = ("means", "scales", "quats", "opacities")
COLOUR = ("sh0", "shN")
SEMANTIC = ("feat", "label")


def build_config(run_config: dict[str, Any], has_features: bool) -> GsplatConfig:
    """The preset with ``--iters`` shared across the stages and ``backend_options`` applied."""
    cfg = preset(run_config.get("preset") or "fast")
    opts = dict(run_config.get("backend_options") or {})
    sem_over = opts.pop("semantic", None) or {}
    base = cfg.to_dict()
    base.update({k: v for k, v in opts.items() if k in base})
    base["semantic"].update({k: v for k, v in sem_over.items() if k in base["semantic"]})
    cfg = GsplatConfig.from_dict(base)
    for key, allowed in (("semantic_field", ("volume", "gaussian")), ("semantic_supervision", ("lifted", "pixels"))):
        if getattr(cfg, key) not in allowed:
            raise LaserError(f"unknown {key} {getattr(cfg, key)!r} in backend_options; choose one of {allowed}")
    total = run_config.get("iters")
    if total:
        n1, n2 = split_iterations(int(total), [cfg.iters, cfg.semantic.iters]) if has_features else (int(total),
                                                                                                   cfg.semantic.iters)
        ratio = n1 / cfg.iters
        cfg.refine_start = max(1, round(cfg.refine_start * ratio))
        cfg.refine_stop = max(cfg.refine_start + 1, round(cfg.refine_stop * ratio))
        cfg.refine_every = max(10, round(cfg.refine_every * ratio))
        cfg.sh_degree_every = max(1, round(cfg.sh_degree_every * ratio))
        cfg.coarse_until = round(cfg.coarse_until * ratio)
        sem = cfg.semantic
        sem.joint_start = round(sem.joint_start * n2 / sem.iters)
        sem.sct_start = round(sem.sct_start * n2 / sem.iters)
        sem.iters = n2
        cfg.iters = n1
    return cfg


def _scaled_camera(cameras: Cameras, index: int, scale: float) -> tuple[Tensor, Tensor, int, int]:
    """``viewmat``, ``K``, width, height of camera ``index`` rendered at ``scale`` of its resolution."""
    W, H = max(1, round(cameras.width * scale)), max(1, round(cameras.height * scale))
    K = cameras.K[index].clone()
    K[0] *= W / cameras.width
    K[1] *= H / cameras.height
    return torch.linalg.inv(cameras.c2w[index]), K, W, H


@register_backend("gsplat")
class GsplatBackend(Backend):
    """3D Gaussians + shared semantic heads."""

    def __init__(self) -> None:
        self.cfg: GsplatConfig | None = None
        self.params: nn.ParameterDict | None = None
        self.heads: SemanticHeads | None = None
        self.device = torch.device("cpu")
        self.classes: list[str] = []
        self.text: Tensor | None = None
        self.background = 0.0
        self.sh_degree = 0
        self.field: GaussianSemanticField | None = None  # semantic_field "volume" (built at stage 2's start)
        self.field_optimizer: torch.optim.Optimizer | None = None
        self._semantic_cache: tuple[Tensor, Tensor] | None = None

    # ------------------------------------------------------------------ rendering core
    def _rgb(self, viewmat: Tensor, degree: int) -> Tensor:
        p = self.params
        centre = torch.linalg.inv(viewmat)[:3, 3]
        dirs = torch.nn.functional.normalize(p["means"] - centre, dim=-1)
        return sh_to_rgb(p["sh0"], p["shN"], dirs, degree)

    def _semantic_inputs(self) -> tuple[Tensor, Tensor]:
        """``[N, point_dim]`` attention inputs and ``[N, code_dim]`` label codes of all Gaussians.

        From the spatial field (``semantic_field`` "volume") or the free per-Gaussian parameters ("gaussian").
        """
        p = self.params
        if self.field is not None:
            return self.field(p["means"], gaussian_appearance(p["sh0"], p["shN"]))
        return p["feat"], p["label"]

    def _semantic(self) -> tuple[Tensor, Tensor]:
        """``[N, E]`` attention outputs (over all Gaussians, weighted by opacity) and ``[N, code_dim]`` label codes.

        They do not depend on the camera, so outside training (no autograd) they are computed
        once and cached; any parameter update (a training step, loading) clears the cache.
        """
        if self._semantic_cache is not None and not torch.is_grad_enabled():
            return self._semantic_cache
        feat, code = self._semantic_inputs()
        h = self.heads.point_embedding(feat, torch.sigmoid(self.params["opacities"]).detach())
        self._semantic_cache = (h, code) if not torch.is_grad_enabled() else None
        return h, code

    def _raster(self, viewmat: Tensor, K: Tensor, W: int, H: int, rgb: bool, semantic: bool,
                degree: int | None = None, label: bool | None = None, class_scores: Tensor | None = None,
                channels: tuple[Tensor, Tensor] | None = None) -> tuple[dict[str, Tensor], dict]:
        """Rasterize the requested channel groups in one pass; returns images ``[H, W, k]`` and info.

        ``semantic`` adds the attention outputs ``h``; ``label`` (default: same as ``semantic``) the label
        codes; ``class_scores`` ``[N, C]`` per-Gaussian class scores (channel group ``scores``).
        ``channels`` passes ``(h, code)`` computed once for several views (training).
        """
        p = self.params
        label = semantic if label is None else label
        if (semantic or label) and channels is None:
            channels = self._semantic()
        parts, names = [], []
        if rgb:
            parts.append(self._rgb(viewmat, self.sh_degree if degree is None else degree))
            names.append(("rgb", 3))
        if class_scores is not None:
            parts.append(class_scores)
            names.append(("scores", class_scores.shape[1]))
        if semantic:
            parts.append(channels[0])
            names.append(("h", channels[0].shape[1]))
        if label:
            parts.append(channels[1])
            names.append(("code", channels[1].shape[1]))
        colors = torch.cat(parts, dim=-1)
        bg = torch.zeros(colors.shape[1], device=colors.device)
        if rgb:
            bg[:3] = self.background
        img, alpha, info = rasterize(p["means"], p["quats"], torch.exp(p["scales"]), torch.sigmoid(p["opacities"]),
                                     colors, viewmat, K, W, H, background=bg)
        out, start = {"alpha": alpha[..., 0]}, 0
        for name, width in names:
            out[name] = img[..., start:start + width]
            start += width
        return out, info

    @torch.no_grad()
    def render(self, cameras: Cameras, index: int, outputs: tuple[str, ...] = ("rgb",),
               text: Tensor | None = None) -> dict[str, Tensor]:
        want = set(outputs)
        semantic = bool(want & {"feature", "label", "logits", "segmentation"})
        if semantic and self.heads is None:
            raise LaserError("this run was trained without features (--features none); it has no semantic outputs")
        if want & {"logits", "segmentation"} and text is None:
            raise ValueError("logits and segmentation need text embeddings")
        cams = cameras.to(self.device)
        viewmat, K, W, H = _scaled_camera(cams, index, 1.0)
        scores = None
        if "segmentation" in want and "logits" not in want:  # C channels instead of E (see class_directions)
            scores = self._semantic()[0] @ self.heads.class_directions(text.to(self.device)).T
        img, _ = self._raster(viewmat, K, W, H, rgb="rgb" in want, semantic=bool(want & {"feature", "logits"}),
                              label="label" in want, class_scores=scores)
        result: dict[str, Tensor] = {}
        if scores is not None:
            result["segmentation"] = img["scores"].argmax(dim=-1)
        if "rgb" in img:
            result["rgb"] = img["rgb"]
        if "feature" in want:
            result["feature"] = self.heads.decode(img["h"])
        if "logits" in want:
            result["logits"] = self.heads.feature_logits(img["h"], text.to(self.device))
            result["segmentation"] = result["logits"].argmax(dim=-1)
        if "label" in want:
            result["label"] = self.heads.label(img["code"])
        if "depth" in want:
            result["depth"] = self._depth(viewmat, K, W, H)
        return {k: v for k, v in result.items() if k in want}

    def _depth(self, viewmat: Tensor, K: Tensor, W: int, H: int) -> Tensor:
        p = self.params
        z = (p["means"] @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2:3]
        img, alpha, _ = rasterize(p["means"], p["quats"], torch.exp(p["scales"]), torch.sigmoid(p["opacities"]),
                                  z, viewmat, K, W, H)
        return img[..., 0] / alpha[..., 0].clamp_min(1e-6)

    # ------------------------------------------------------------------ state
    def model_state(self) -> dict[str, Any]:
        return {
            "backend": "gsplat", "config": self.cfg.to_dict(), "n": int(self.params["means"].shape[0]),
            "params": {k: v.detach().cpu() for k, v in self.params.items()},
            "heads": {k: v.cpu() for k, v in self.heads.state_dict().items()} if self.heads is not None else {},
            "field": ({"meta": self.field.meta(), "state": {k: v.cpu() for k, v in self.field.state_dict().items()}}
                      if self.field is not None else None),
            "dim": self.heads.dim if self.heads is not None else 0, "background": self.background,
            "sh_degree": self.sh_degree, "classes": list(self.classes),
            "text": self.text.cpu() if self.text is not None else None,
        }

    def load_model_state(self, state: dict[str, Any]) -> None:
        self._semantic_cache = None
        self.cfg = GsplatConfig.from_dict(state["config"])
        sem = self.cfg.semantic
        self.params = empty_params(int(state["n"]), self.cfg.sh_degree, sem.point_dim, sem.code_dim)
        dim = int(state["dim"])
        self.heads = SemanticHeads(sem, dim).to(self.device) if dim else None
        field = state.get("field")
        self.field = GaussianSemanticField.from_meta(field["meta"], sem.point_dim, sem.code_dim) if field else None
        self._load_weights([(self.params, state["params"])]
                           + ([(self.heads, state["heads"])] if self.heads is not None else [])
                           + ([(self.field, field["state"])] if self.field is not None else []))
        self.params = self.params.to(self.device)
        if self.field is not None:
            self.field = self.field.to(self.device)
        self.background = float(state["background"])
        self.sh_degree = int(state["sh_degree"])
        self.classes = list(state.get("classes") or [])
        self.text = state["text"].to(self.device) if state.get("text") is not None else None

    # ------------------------------------------------------------------ optimisation
    def _make_optimizers(self, scene_scale: float) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        lrs = {"means": c.lr_means * scene_scale, "scales": c.lr_scales, "quats": c.lr_quats,
               "opacities": c.lr_opacities, "sh0": c.lr_sh0, "shN": c.lr_shN, "feat": c.lr_feat, "label": c.lr_feat}
        return {k: torch.optim.Adam([{"params": [self.params[k]], "lr": lrs[k], "name": k, "initial_lr": lrs[k]}],
                                    eps=1e-15, betas=(0.9, 0.999)) for k in self.params.keys()}

    def _make_field_optimizer(self) -> torch.optim.Optimizer:
        c = self.cfg
        groups = [(self.field.grid_parameters(), c.lr_field_grid), (self.field.net_parameters(), c.lr_field_net)]
        return torch.optim.Adam([{"params": ps, "lr": lr, "initial_lr": lr} for ps, lr in groups])

    def _lift_targets(self, targets: FeatureTargets, cams: Cameras, views: list[int], scene: Scene, scale: float
                      ) -> tuple[Tensor, Tensor | None, Tensor]:
        """``[N, D]`` CLIP features, ``[N, C]`` text-augmentation targets (or None) and ``[N]`` visibility of
        every Gaussian, averaged over ``views`` rendered at ``scale`` (see :mod:`lift`)."""
        p = self.params
        means, quats = p["means"].detach(), p["quats"].detach()
        scales, opacities = torch.exp(p["scales"].detach()), torch.sigmoid(p["opacities"].detach())

        def render(colours: Tensor, viewmat: Tensor, K: Tensor, W: int, H: int) -> Tensor:
            return rasterize(means, quats, scales, opacities, colours, viewmat, K, W, H)[0]

        def per_view():
            for v in views:
                viewmat, K, W, H = _scaled_camera(cams, v, scale)
                ys, xs = torch.meshgrid(torch.arange(H, device=self.device), torch.arange(W, device=self.device),
                                        indexing="ij")
                u = (xs.reshape(-1).float() + 0.5) * scene.width / W
                vv = (ys.reshape(-1).float() + 0.5) * scene.height / H
                clip, aug = targets.sample(torch.full_like(u, v, dtype=torch.long), u, vv)
                yield viewmat, K, W, H, clip if aug is None else torch.cat([clip, aug], dim=1)

        mean, weight = lift_to_gaussians(render, means.shape[0], per_view())
        D = targets.dim
        return mean[:, :D], (mean[:, D:] if mean.shape[1] > D else None), weight

    def _state_tensors(self) -> list[Tensor]:
        """Every trained tensor (checked for NaN/Inf before a step is applied or a checkpoint written)."""
        out = list(self.params.values())
        for module in (self.heads, self.field):
            out += list(module.parameters()) if module is not None else []
        return out

    @torch.no_grad()
    def _cap_gaussians(self) -> None:
        """Prune the least opaque Gaussians beyond ``max_gaussians`` (bounds CPU time and memory)."""
        from gsplat.strategy.ops import remove

        n, cap = self.params["means"].shape[0], self.cfg.max_gaussians
        if cap and n > cap:
            order = torch.argsort(self.params["opacities"])
            mask = torch.zeros(n, dtype=torch.bool, device=order.device)
            mask[order[: n - cap]] = True
            remove(self.params, self.optimizers, self.strategy_state, mask)

    def _trainable(self, names: tuple[str, ...]) -> None:
        for k, v in self.params.items():
            v.requires_grad_(k in names)

    # ------------------------------------------------------------------ training
    def fit(self, scene: Scene, config: dict[str, Any], run_dir: Path, features: FeatureSet | None = None,
            console: Console | None = None) -> LoopLog:
        from gsplat.strategy import DefaultStrategy

        console = console or make_console()
        run_dir = Path(run_dir)
        self.device = resolve_device(config.get("device", "auto"))
        cfg = self.cfg = build_config(config, features is not None)
        seed = int(config.get("seed", 0))
        torch.manual_seed(seed)
        sem = cfg.semantic
        self.background = 1.0 if (not scene.forward_facing and (config.get("background") or "white") == "white") \
            else 0.0
        g = torch.Generator().manual_seed(seed)
        points, colours = initial_points(scene, cfg.init_points, g)
        self.params = create_params(points, colours, cfg.sh_degree, sem.point_dim, sem.code_dim, g,
                                    max_scale=pixel_footprint(points, scene, cfg.init_max_pixels)).to(self.device)
        self.heads = SemanticHeads(sem, features.dim).to(self.device) if features is not None else None
        self.field, self.field_optimizer, self._semantic_cache = None, None, None
        lifted: list[tuple[Tensor, Tensor | None, Tensor]] = []  # per-Gaussian targets, computed at stage 2's start
        targets = None
        if features is not None:
            targets = FeatureTargets(features, scene, self.device)
            self.classes, self.text = list(scene.classes), targets.text
        centres = scene.cameras.centers
        scene_scale = float((centres - centres.mean(0)).norm(dim=-1).max()) * 1.1 or 1.0
        strategy = DefaultStrategy(refine_start_iter=cfg.refine_start, refine_stop_iter=cfg.refine_stop,
                                   refine_every=cfg.refine_every, reset_every=cfg.reset_every,
                                   grow_grad2d=cfg.grow_grad2d, prune_opa=cfg.prune_opa, verbose=False)
        self.optimizers = self._make_optimizers(scene_scale)
        strategy.check_sanity(self.params, self.optimizers)
        self.strategy_state = strategy.initialize_state(scene_scale=scene_scale)
        self.heads_optimizer = torch.optim.Adam(self.heads.parameters(), lr=sem.lr_heads) if self.heads else None
        n1, n2 = cfg.iters, (sem.iters if targets is not None else 0)
        stages = [Stage("reconstruct", 0, n1)] + ([Stage("semantics", n1, n1 + n2)] if n2 else [])
        train_views = scene.splits.get("train") or list(range(scene.num_views))
        eval_view = (scene.splits.get("test") or scene.splits.get("val") or [train_views[0]])[0]
        images = scene.images.to(self.device)
        cams = scene.cameras.to(self.device)
        start = 0
        latest = load_latest(run_dir, warn=lambda m: console.print(f"[yellow]warning:[/] {m}"))
        if latest is not None:
            path, state = latest
            self.load_model_state(state["model"])
            self.cfg = cfg  # settings of this invocation (e.g. ablation switches); shapes come from the checkpoint
            if self.heads is not None:
                self.heads.cfg = cfg.semantic
            self.optimizers = self._make_optimizers(scene_scale)
            for k, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][k])
            if self.heads_optimizer is not None:
                self.heads_optimizer = torch.optim.Adam(self.heads.parameters(), lr=sem.lr_heads)
                self.heads_optimizer.load_state_dict(state["heads_optimizer"])
            self.strategy_state = state["strategy"]
            if self.field is not None:
                self.field_optimizer = self._make_field_optimizer()
                if state.get("field_optimizer") is not None:
                    self.field_optimizer.load_state_dict(state["field_optimizer"])
            start = int(state["step"])
            console.print(f"resuming from {path.name} (step {start}, {self.params['means'].shape[0]} Gaussians)")

        def checkpoint(step: int) -> None:
            save_step(run_dir, step, {
                "model": self.model_state(), "step": step,
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "heads_optimizer": self.heads_optimizer.state_dict() if self.heads_optimizer else None,
                "field_optimizer": self.field_optimizer.state_dict() if self.field_optimizer else None,
                "strategy": {k: v for k, v in self.strategy_state.items()}}, stage1_end=step == n1 and n2 > 0)

        def pick_view(it: int) -> int:
            gen = step_generator(seed, it)
            return train_views[int(torch.randint(len(train_views), (1,), generator=gen))]

        def step1(it: int) -> StepResult:
            self._semantic_cache = None
            torch.manual_seed(seed * 1_000_003 + it)  # strategy randomness, reproducible on resume
            self._trainable(GEOMETRY + COLOUR)
            self.sh_degree = min(cfg.sh_degree, it // cfg.sh_degree_every)
            frac = it / max(1, n1)
            lr = cfg.lr_means * scene_scale * cfg.lr_means_final ** frac
            for grp in self.optimizers["means"].param_groups:
                grp["lr"] = lr
            v = pick_view(it)
            scale = 0.5 if it < cfg.coarse_until else 1.0  # coarse-to-fine: early steps at half resolution
            viewmat, K, W, H = _scaled_camera(cams, v, scale)
            img, info = self._raster(viewmat, K, W, H, rgb=True, semantic=False)
            strategy.step_pre_backward(self.params, self.optimizers, self.strategy_state, it, info)
            gt = images[v] if scale == 1.0 else torch.nn.functional.interpolate(
                images[v].permute(2, 0, 1)[None], size=(H, W), mode="area")[0].permute(1, 2, 0)
            l1 = (img["rgb"] - gt).abs().mean()
            loss = (1 - cfg.ssim_lambda) * l1 + cfg.ssim_lambda * (1 - ssim(img["rgb"], gt))
            if not torch.isfinite(loss):
                return StepResult(applied=False)
            loss.backward()
            if not all(torch.isfinite(self.params[k].grad).all() for k in GEOMETRY + COLOUR
                       if self.params[k].grad is not None):
                for opt in self.optimizers.values():
                    opt.zero_grad(set_to_none=True)
                return StepResult(applied=False)
            for k in GEOMETRY + COLOUR:
                self.optimizers[k].step()
            for opt in self.optimizers.values():
                opt.zero_grad(set_to_none=True)
            strategy.step_post_backward(self.params, self.optimizers, self.strategy_state, it, info, packed=False)
            self._cap_gaussians()
            mse = float(((img["rgb"].detach() - gt) ** 2).mean())
            return StepResult({"l1": float(l1.detach()), "psnr": -10 * math.log10(max(mse, 1e-10)),
                               "n": float(self.params["means"].shape[0])})

        def lifted_step(j: int, gen: torch.Generator) -> tuple[Tensor, dict[str, float]]:
            """Shared losses on ``semantic_rays`` Gaussians drawn by visibility, against their lifted targets."""
            if not lifted:
                console.print(f"lifting the CLIP features of {len(train_views)} views onto "
                              f"{self.params['means'].shape[0]} Gaussians")
                lifted.append(self._lift_targets(targets, cams, train_views, scene, cfg.semantic_scale))
            clip, aug, weight = lifted[0]
            idx = torch.multinomial(weight.cpu(), cfg.semantic_rays, replacement=True, generator=gen).to(self.device)
            h, code = self._semantic()
            return semantic_losses(self.heads, sem, j, h[idx], code[idx], clip[idx],
                                   aug[idx] if aug is not None else None, targets.text)

        def step2(it: int) -> StepResult:
            self._semantic_cache = None
            j = it - n1
            joint = j >= sem.joint_start and cfg.semantic_supervision == "pixels"  # lifted: colours stay as fitted
            if cfg.semantic_field == "volume" and self.field is None:  # geometry is final: fit the box to it
                with torch.random.fork_rng(devices=[]):  # the same initial field whether resumed or not
                    torch.manual_seed(seed * 1_000_003 + it)
                    self.field = GaussianSemanticField.for_gaussians(
                        self.params["means"].detach(), cfg.semantic_voxels, gaussian_appearance(
                            self.params["sh0"], self.params["shN"]).shape[1], sem.point_dim, sem.code_dim)
                self.field_optimizer = self._make_field_optimizer()
            per_gaussian = SEMANTIC if self.field is None else ()
            self._trainable(per_gaussian + (COLOUR if joint else ()))
            decay = decayed_lr(1.0, cfg.semantic_lr_decay, j, n2)  # the same multiplicative decay as tensorf
            for opt in [self.optimizers[k] for k in SEMANTIC + COLOUR] + [self.field_optimizer]:
                for grp in (opt.param_groups if opt is not None else []):
                    grp["lr"] = grp["initial_lr"] * decay
            for grp in self.heads_optimizer.param_groups:
                grp["lr"] = sem.lr_heads * decay
            gen = step_generator(seed, it, stream=1)
            if cfg.semantic_supervision == "lifted":
                loss, parts = lifted_step(j, gen)
                return apply(loss, parts, per_gaussian, joint)
            channels = self._semantic()  # once per step, shared by the views
            n_views = min(cfg.semantic_views, len(train_views))
            views = [train_views[int(i)] for i in torch.randperm(len(train_views), generator=gen)[:n_views]]
            hs, codes, clips, augs, mses = [], [], [], [], []
            for v in views:  # a few views per step: the shared heads see more than one viewpoint per update
                viewmat, K, W, H = _scaled_camera(cams, v, cfg.semantic_scale)
                img, _ = self._raster(viewmat, K, W, H, rgb=joint, semantic=True, channels=channels)
                pick = torch.randperm(W * H, generator=gen)[: cfg.semantic_rays // n_views].to(self.device)
                py, px = pick // W, pick % W
                u = (px.float() + 0.5) * scene.width / W
                vv = (py.float() + 0.5) * scene.height / H
                clip, aug = targets.sample(torch.full_like(pick, v), u, vv)
                hs.append(img["h"].reshape(-1, img["h"].shape[-1])[pick])
                codes.append(img["code"].reshape(-1, img["code"].shape[-1])[pick])
                clips.append(clip)
                augs.append(aug)
                if joint:
                    small = torch.nn.functional.interpolate(images[v].permute(2, 0, 1)[None], size=(H, W),
                                                            mode="area")[0].permute(1, 2, 0)
                    mses.append(rgb_loss(img["rgb"], small))
            aug = torch.cat(augs) if augs[0] is not None else None
            loss, parts = semantic_losses(self.heads, sem, j, torch.cat(hs), torch.cat(codes), torch.cat(clips), aug,
                                          targets.text)
            if joint:
                mse = torch.stack(mses).mean()
                loss = loss + sem.w_rgb * mse
                parts["psnr"] = -10 * math.log10(max(float(mse.detach()), 1e-10))
            return apply(loss, parts, per_gaussian, joint)

        def apply(loss: Tensor, parts: dict[str, float], per_gaussian: tuple[str, ...], joint: bool) -> StepResult:
            if not torch.isfinite(loss):
                return StepResult(applied=False)
            loss.backward()
            extra = [self.heads_optimizer] + ([self.field_optimizer] if self.field_optimizer is not None else [])
            grads_ok = all(torch.isfinite(p.grad).all() for p in self._state_tensors() if p.grad is not None)
            if grads_ok:
                for k in per_gaussian + (COLOUR if joint else ()):
                    self.optimizers[k].step()
                for opt in extra:
                    opt.step()
            for opt in list(self.optimizers.values()) + extra:
                opt.zero_grad(set_to_none=True)
            return StepResult(parts, applied=grads_ok)

        def evaluate(done: int) -> dict[str, float]:
            with torch.no_grad():
                out = self.render(scene.cameras, eval_view, ("rgb",))
            metrics = {"test_psnr": psnr(out["rgb"].cpu(), scene.images[eval_view])}
            if done > n1 and targets is not None and scene.annotated_views and targets.text is not None:
                metrics["miou"] = quick_miou(self, scene, targets.text)  # for training curves
            return metrics

        log = run_stages(stages, start, lambda it: step1(it) if it < n1 else step2(it), checkpoint,
                         cfg.checkpoint_every, evaluate=evaluate if cfg.eval_every else None,
                         eval_every=cfg.eval_every, console=console,
                         state_ok=lambda: all_finite(self._state_tensors()))
        self._trainable(())
        self.save(run_dir / MODEL_FILE)
        atomic_write_text(run_dir / "train_log.json", json.dumps(
            {"stage_seconds": log.stage_seconds, "history": log.history, "skipped_steps": log.skipped_steps,
             "peak_memory_mb": peak_memory_mb(self.device),
             "gaussians": int(self.params["means"].shape[0]), "resolved_config": cfg.to_dict()}, indent=2))
        return log

    # ------------------------------------------------------------------ export
    @torch.no_grad()
    def semantic_points(self, cameras: Cameras | None = None, views: list[int] | None = None) -> dict[str, Tensor]:
        """The Gaussians' centres, base colours and (decoded) semantic outputs; cameras are not needed."""
        p = self.params
        out = {"xyz": p["means"].detach().cpu(),
               "rgb": (SH_C0 * p["sh0"][:, 0].detach() + 0.5).clamp(0, 1).cpu()}
        if self.heads is not None:
            h, code = self._semantic()
            out["feature"] = self.heads.decode(h).cpu()
            out["label"] = self.heads.label(code).cpu()
        return out

    def export(self, path: Path, prompts: list[str] | None = None, text: Tensor | None = None,
               color_by_label: bool = False, keep: Tensor | None = None, **options: Any) -> list[Path]:
        """3DGS PLY of the Gaussians with per-Gaussian labels (scene cameras in ``options`` are not needed)."""
        from laser_gs.export import export_gaussians

        return export_gaussians(self, Path(path), prompts, text, color_by_label=color_by_label, keep=keep)


__all__ = ["GsplatBackend", "build_config", "scale_steps"]
