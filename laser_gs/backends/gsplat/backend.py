"""The ``gsplat`` backend: language Gaussians, rasterized with gsplat on CUDA or our CPU rasterizer.

Stage 1 fits the Gaussians to the photos (L1 + D-SSIM, densification and
pruning through gsplat's ``DefaultStrategy``, driven by the trainer's hooks).
Stage 2 freezes the Gaussians; each Gaussian's attention input and label code
come from a spatial VM field at its centre and its appearance
(``semantic_field.py``, the tensorf design), trained with the shared losses and
schedule against CLIP features lifted onto the Gaussians from all training views
(``lift.py``). Transient query attention runs over all Gaussians; its E-dim
outputs and the label codes are rasterized as extra channels and decoded once per
pixel (exact: the decoder is linear), so a 512-d feature field costs E + code_dim
channels. docs/method.md gives the reasons and the measurements behind each choice.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from laser_gs.backends.gsplat.config import PRESETS, GsplatSettings
from laser_gs.backends.gsplat.lift import lift_to_gaussians
from laser_gs.backends.gsplat.model import (background_sphere, create_params, empty_params, initial_points,
                                            pixel_footprint)
from laser_gs.data.triangulate import MIN_POINTS
from laser_gs.backends.gsplat.raster import rasterize
from laser_gs.backends.gsplat.semantic_field import field_box, gaussian_appearance, normalise
from laser_gs.backends.protocol import Backend, ParamGroup, ReconstructionLoss, SemanticBatch, Step
from laser_gs.backends.registry import register_backend
from laser_gs.data.cameras import Cameras
from laser_gs.data.scene import Scene
from laser_gs.data.unbounded import Contraction, scene_contraction
from laser_gs.export.records import GaussianAttributes, PointSet
from laser_gs.progress import progress
from laser_gs.semantics.field import SemanticField
from laser_gs.semantics.volume import resolution_for
from laser_gs.spherical_harmonics import SH_C0, sh_to_rgb
from laser_gs.training.rays import step_generator
from laser_gs.training.semantic import FeatureTargets
from laser_gs.training.settings import TrainingSettings
from laser_gs.training.ssim import ssim


def _scaled_camera(cameras: Cameras, index: int, scale: float) -> tuple[Tensor, Tensor, int, int]:
    """``viewmat``, ``K``, width, height of camera ``index`` rendered at ``scale`` of its resolution."""
    cam = cameras.scaled(index, scale)
    return torch.linalg.inv(cam.c2w[0]), cam.K[0], cam.width, cam.height


@register_backend("gsplat")
class GsplatBackend(Backend):
    """3D Gaussians + shared semantic heads."""

    settings_class = GsplatSettings
    presets = PRESETS

    def __init__(self) -> None:
        super().__init__()
        self.params: nn.ParameterDict | None = None  # gsplat's names: means, scales, quats, opacities, sh0, shN
        self.field: SemanticField | None = None  # built when stage 2 starts (the geometry is final)
        self.field_box: Tensor | None = None  # [2, 3] box of the Gaussians' centres the field spans
        #: unbounded 360-degree scenes: the field reads contracted centres, and a background sphere is seeded
        self.contraction: Contraction | None = None
        self.background = 0.0
        self.sh_degree = 0
        self._semantic_cache: tuple[Tensor, Tensor] | None = None
        # training state, set up from the scene
        self.seed = 0
        self.scene_scale = 1.0
        self.strategy = None  # gsplat DefaultStrategy
        self.strategy_state: dict[str, Any] = {}
        self.images: Tensor | None = None  # [N, H, W, 3] on the device
        self.cameras: Cameras | None = None
        self.train_views: list[int] = []
        self.lifted: tuple[Tensor, Tensor | None, Tensor] | None = None  # per-Gaussian CLIP, aug, visibility
        #: ``[N, E]`` per-Gaussian lifted features in the decoder's basis (``semantic.method = "lift"``)
        self.lifted_h: Tensor | None = None

    @property
    def cfg(self) -> GsplatSettings:
        return self.settings.model

    # ------------------------------------------------------------------ set-up and state
    def sparse_points(self, scene: Scene) -> tuple[Tensor, Tensor] | None:
        """``(xyz, rgb)`` to seed the Gaussians with (see ``init_from``), or None to start at random."""
        if self.cfg.init_from == "random":
            return None
        if scene.points is not None and len(scene.points) >= MIN_POINTS:
            return scene.points, scene.point_colors
        if self.cfg.init_from == "auto" and scene.forward_facing:
            return None  # the frustum start is as good there (see GsplatSettings.init_from)
        from laser_gs.data.triangulate import triangulate

        tri = triangulate(scene, console=self.console)
        if tri.info["points"] < MIN_POINTS:
            self.console.print(f"[yellow]Warning:[/] only {tri.info['points']} points could be triangulated from "
                               f"the training views (at least {MIN_POINTS} are needed); the Gaussians start at "
                               "random (too little texture or overlap?)")
            return None
        self.console.print(f"Seeding Gaussians with {tri.info['points']:,} triangulated points "
                           f"({tri.info['mean_reprojection_error_px']:.2f} px; cached in {tri.info['cache']})")
        return tri.xyz, tri.rgb

    def setup(self, scene: Scene, settings: TrainingSettings, dim: int | None, seed: int) -> None:
        from gsplat.strategy import DefaultStrategy

        self.settings = settings
        cfg = self.cfg
        self.seed = seed
        self.background = 1.0 if (not scene.forward_facing and scene.background == "white") else 0.0
        g = torch.Generator().manual_seed(self.seed)
        self.contraction = (scene_contraction(scene.cameras, scene.aabb, scene.forward_facing)
                            if cfg.unbounded == "auto" else None)
        n_bg = round(cfg.background_share * cfg.init_points) if self.contraction is not None else 0
        bg_points, bg_colours, bg_scales = (background_sphere(scene, self.contraction, n_bg, cfg.background_radius)
                                            if n_bg else (torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0)))
        points, colours = initial_points(scene, cfg.init_points - len(bg_points), g, self.sparse_points(scene),
                                         cfg.init_content_share)
        max_scale = torch.cat([pixel_footprint(points, scene, cfg.init_max_pixels), bg_scales])
        if len(bg_points):
            self.console.log(f"unbounded 360° scene: {len(bg_points):,} Gaussians on a background sphere of radius "
                             f"{self.contraction.radius * cfg.background_radius:.1f}; the semantic field reads "
                             "contracted positions")
        self.params = create_params(torch.cat([points, bg_points]), torch.cat([colours, bg_colours]), cfg.sh_degree,
                                    max_scale=max_scale).to(self.device)
        self.build_heads(dim)
        self.field, self.lifted, self._semantic_cache = None, None, None
        centres = scene.cameras.centers
        self.scene_scale = float((centres - centres.mean(0)).norm(dim=-1).max()) * 1.1 or 1.0
        # far Gaussians are large by right: gsplat prunes any above 0.1 scene scales after its first opacity
        # reset, which would remove the background sphere, so that limit is raised above the sphere's splats
        prune_scale3d = max(0.1, 2 * float(bg_scales.max()) / self.scene_scale) if len(bg_points) else 0.1
        self.strategy = DefaultStrategy(refine_start_iter=cfg.refine_start, refine_stop_iter=cfg.refine_stop,
                                        refine_every=cfg.refine_every, reset_every=cfg.reset_every,
                                        grow_grad2d=cfg.grow_grad2d, prune_opa=cfg.prune_opa,
                                        prune_scale3d=prune_scale3d, verbose=False)
        self.strategy_state = self.strategy.initialize_state(scene_scale=self.scene_scale)
        self.images = scene.images.to(self.device)
        self.cameras = scene.cameras.to(self.device)
        self.train_views = scene.train_views

    def model_state(self) -> dict[str, Any]:
        return {"n": int(self.params["means"].shape[0]),
                "params": {k: v.detach().cpu() for k, v in self.params.items()},
                "field": ({"meta": self.field.meta(), "box": self.field_box.cpu(),
                           "state": {k: v.cpu() for k, v in self.field.state_dict().items()}}
                          if self.field is not None else None),
                "background": self.background, "sh_degree": self.sh_degree,
                "contraction": self.contraction.to_dict() if self.contraction is not None else None,
                "lifted_h": self.lifted_h.cpu() if self.lifted_h is not None else None}

    def load_model_state(self, state: dict[str, Any]) -> None:
        self._semantic_cache = None
        self.params = empty_params(int(state["n"]), self.cfg.sh_degree)
        self.params.load_state_dict(state["params"])
        self.params = self.params.to(self.device)
        field = state.get("field")
        self.field = self.field_box = None
        if field:
            self.field = SemanticField.from_meta(field["meta"])
            self.field.load_state_dict(field["state"])
            self.field = self.field.to(self.device)
            self.field_box = field["box"].to(self.device)
        self.background = float(state["background"])
        self.contraction = Contraction.from_dict(state["contraction"]) if state.get("contraction") else None
        self.sh_degree = int(state["sh_degree"])
        self.lifted_h = state["lifted_h"].to(self.device) if state.get("lifted_h") is not None else None

    def parameters(self) -> list[Tensor]:
        out = list(self.params.values())
        for module in (self.heads, self.field):
            out += list(module.parameters()) if module is not None else []
        return out

    def training_state(self) -> dict[str, Any]:
        return {"strategy": dict(self.strategy_state)}

    def load_training_state(self, state: dict[str, Any]) -> None:
        if "strategy" in state:
            self.strategy_state = {k: v.to(self.device) if isinstance(v, Tensor) else v
                                   for k, v in state["strategy"].items()}

    def summary(self) -> dict[str, Any]:
        return {"gaussians": int(self.params["means"].shape[0])}

    # ------------------------------------------------------------------ training pieces
    def param_groups(self, phase: str) -> list[ParamGroup]:
        c, sem = self.cfg, self.settings.semantic
        if phase == "reconstruct":
            lrs = {"means": c.lr_means * self.scene_scale, "scales": c.lr_scales, "quats": c.lr_quats,
                   "opacities": c.lr_opacities, "sh0": c.lr_sh0, "shN": c.lr_shN}
            # one optimizer per parameter, named as it: gsplat's strategy edits them when it densifies
            return [ParamGroup(k, [self.params[k]], lrs[k], c.lr_means_final if k == "means" else 1.0, eps=1e-15)
                    for k in self.params.keys()]
        # stage 2 (both phases: colours stay as fitted, the field reads them detached)
        return [ParamGroup("heads", self.heads.trainable_parameters(), sem.lr_heads, sem.lr_decay),
                ParamGroup("field_grid", self.field.grid_parameters(), c.lr_field_grid, sem.lr_decay),
                ParamGroup("field_net", self.field.net_parameters(), c.lr_field_net, sem.lr_decay)]

    def begin_phase(self, phase: str, step: int, targets: FeatureTargets | None) -> None:
        if phase == "reconstruct":
            return
        if self.field is None:  # the geometry is final: fit the field's box to it
            c, sem, p = self.cfg, self.settings.semantic, self.params
            self.field_box = (field_box(p["means"].detach()) if self.contraction is None else
                              torch.tensor([[-2.0] * 3, [2.0] * 3], device=self.device))
            with torch.random.fork_rng(devices=[]):  # the same initial field whether resumed or not
                torch.manual_seed(self.seed * 1_000_003 + step)
                self.field = SemanticField(resolution_for(self.field_box, c.semantic_voxels),
                                           gaussian_appearance(p["sh0"], p["shN"]).shape[1], sem.point_dim,
                                           sem.code_dim, c.semantic_comps, c.label_comps, c.field_width
                                           ).to(self.device)
        if self.lifted is None:
            self.lifted = self._lift_targets(targets)

    def reconstruction_loss(self, step: Step) -> ReconstructionLoss:
        cfg, it = self.cfg, step.index
        self._semantic_cache = None
        torch.manual_seed(self.seed * 1_000_003 + it)  # strategy randomness, reproducible on resume
        self.sh_degree = min(cfg.sh_degree, it // cfg.sh_degree_every)
        gen = step_generator(self.seed, it)
        v = self.train_views[int(torch.randint(len(self.train_views), (1,), generator=gen))]
        scale = 0.5 if it < cfg.coarse_until else 1.0  # coarse-to-fine: early steps at half resolution
        viewmat, K, W, H = _scaled_camera(self.cameras, v, scale)
        img, info = self._raster(viewmat, K, W, H, rgb=True, semantic=False)
        gt = self.images[v] if scale == 1.0 else torch.nn.functional.interpolate(
            self.images[v].permute(2, 0, 1)[None], size=(H, W), mode="area")[0].permute(1, 2, 0)
        l1 = (img["rgb"] - gt).abs().mean()
        loss = (1 - cfg.ssim_lambda) * l1 + cfg.ssim_lambda * (1 - ssim(img["rgb"], gt))
        mse = float(((img["rgb"].detach() - gt) ** 2).mean())
        return ReconstructionLoss(loss, {"l1": float(l1.detach()), "psnr": -10 * math.log10(max(mse, 1e-10)),
                                         "n": float(self.params["means"].shape[0])}, aux=info)

    def before_backward(self, step: Step, optimizers: dict, aux: Any) -> None:
        self.strategy.step_pre_backward(self.params, optimizers, self.strategy_state, step.index, aux)

    def after_step(self, step: Step, optimizers: dict, aux: Any, applied: bool) -> bool:
        """Densification and pruning (gsplat's strategy edits the parameters and their optimizers in place)."""
        if step.stage == "reconstruct" and applied:
            self.strategy.step_post_backward(self.params, optimizers, self.strategy_state, step.index, aux,
                                             packed=False)
            self._cap_gaussians(optimizers)
        return False

    def semantic_batch(self, step: Step, targets: FeatureTargets, joint: bool) -> SemanticBatch:
        """``batch_size`` Gaussians drawn by visibility, against their lifted targets (colours are not tuned)."""
        self._semantic_cache = None
        gen = step_generator(self.seed, step.index, stream=1)
        clip, aug, weight = self.lifted
        idx = torch.multinomial(weight.cpu(), self.settings.semantic.batch_size, replacement=True,
                                generator=gen).to(self.device)
        if self.cfg.semantic_pool == "batch":  # field and attention on the drawn Gaussians only
            feat, code = self._semantic_inputs(idx)
            h = self.heads.point_embedding(feat, torch.sigmoid(self.params["opacities"][idx]).detach())
            return SemanticBatch(h, code, clip[idx], aug[idx] if aug is not None else None)
        h, code = self._semantic()
        return SemanticBatch(h[idx], code[idx], clip[idx], aug[idx] if aug is not None else None)

    @torch.no_grad()
    def lift(self, targets: FeatureTargets) -> None:
        """Training-free semantics: every Gaussian's CLIP feature is the blending-weight average over the views
        (:mod:`lift`), stored as ``E`` coefficients in the best ``E``-dim basis of those features (the decoder),
        so rendering costs ``E`` channels as for trained semantics."""
        clip, _, weight = self.lifted if self.lifted is not None else self._lift_targets(targets)
        self.lifted_h = self._lift_basis(clip, weight)
        self._semantic_cache = None

    @torch.no_grad()
    def finish_semantics(self, targets: FeatureTargets) -> bool:
        """``gsplat.fuse_lift``: every Gaussian's feature becomes ``unit(trained) + unit(lifted)``, stored in the
        best ``E``-dim basis as :meth:`lift` stores features; label codes still come from the field."""
        if not self.cfg.fuse_lift:
            return False
        clip, _, weight = self.lifted if self.lifted is not None else self._lift_targets(targets)
        h, _ = self._semantic()
        trained = torch.nn.functional.normalize(self.heads.decode(h), dim=-1)
        self.lifted_h = self._lift_basis(trained + torch.nn.functional.normalize(clip, dim=-1), weight)
        self._semantic_cache = None
        return True

    @torch.no_grad()
    def _lift_basis(self, clip: Tensor, weight: Tensor) -> Tensor:
        """Set the decoder to the best ``E``-dim basis ``U`` of lifted features ``[N, D]`` (weighted by visibility
        ``[N]``, uncentred: the decoder has no bias); returns the Gaussians' coefficients ``[N, E]``."""
        E = self.settings.semantic.embed_dim
        seen = weight > 0
        unit = torch.nn.functional.normalize(clip[seen], dim=-1) * weight[seen, None].sqrt()
        _, _, vh = torch.linalg.svd(unit, full_matrices=False)
        U = vh[:E].T  # [D, <=E]: fewer when D or the Gaussians are fewer than E
        U = torch.cat([U, U.new_zeros(U.shape[0], E - U.shape[1])], dim=1).contiguous()
        self.heads.attention.unzip.weight.copy_(U)
        return torch.nn.functional.normalize(clip, dim=-1) @ U  # unseen Gaussians: 0

    def _lift_targets(self, targets: FeatureTargets) -> tuple[Tensor, Tensor | None, Tensor]:
        """``[N, D]`` CLIP features, ``[N, C]`` text-augmentation targets (or None) and ``[N]`` visibility of
        every Gaussian, averaged over the training views rendered at ``lift_scale`` (see :mod:`lift`)."""
        p, cams, scale = self.params, self.cameras, self.cfg.lift_scale
        basis = targets.basis(self.cfg.lift_dims) if 0 < self.cfg.lift_dims < targets.dim else None  # [D, k]
        table = targets.grids.float() @ basis if basis is not None else None  # [V, h, w, k]
        means, quats = p["means"].detach(), p["quats"].detach()
        scales, opacities = torch.exp(p["scales"].detach()), torch.sigmoid(p["opacities"].detach())

        def render(colours: Tensor, viewmat: Tensor, K: Tensor, W: int, H: int) -> Tensor:
            return rasterize(means, quats, scales, opacities, colours, viewmat, K, W, H)[0]

        def per_view():
            for v in self.train_views:
                viewmat, K, W, H = _scaled_camera(cams, v, scale)
                ys, xs = torch.meshgrid(torch.arange(H, device=self.device), torch.arange(W, device=self.device),
                                        indexing="ij")
                u = (xs.reshape(-1).float() + 0.5) * cams.width / W
                vv = (ys.reshape(-1).float() + 0.5) * cams.height / H
                view = torch.full_like(u, v, dtype=torch.long)
                if table is not None:  # the lift is linear: lift the k coefficients, map back after
                    clip = targets.sample_table(table, view, u, vv)
                    aug = targets.sample_table(targets.aug, view, u, vv) if targets.aug is not None else None
                else:
                    clip, aug = targets.sample(view, u, vv)
                yield viewmat, K, W, H, clip if aug is None else torch.cat([clip, aug], dim=1)

        label = f"lifting CLIP features of {len(self.train_views)} views onto {means.shape[0]} Gaussians"
        with progress(label, len(self.train_views), self.console, unit=" views") as advance:
            mean, weight = lift_to_gaussians(render, means.shape[0], per_view(), on_view=advance)
        D = basis.shape[1] if basis is not None else targets.dim
        clip = mean[:, :D] @ basis.T if basis is not None else mean[:, :D]
        return clip, (mean[:, D:] if mean.shape[1] > D else None), weight

    @torch.no_grad()
    def _cap_gaussians(self, optimizers: dict) -> None:
        """Prune the least opaque Gaussians beyond ``max_gaussians`` (bounds CPU time and memory)."""
        from gsplat.strategy.ops import remove

        n, cap = self.params["means"].shape[0], self.cfg.max_gaussians
        if cap and n > cap:
            order = torch.argsort(self.params["opacities"])
            mask = torch.zeros(n, dtype=torch.bool, device=order.device)
            mask[order[: n - cap]] = True
            remove(self.params, optimizers, self.strategy_state, mask)

    # ------------------------------------------------------------------ rendering core
    def _rgb(self, viewmat: Tensor, degree: int) -> Tensor:
        p = self.params
        centre = torch.linalg.inv(viewmat)[:3, 3]
        dirs = torch.nn.functional.normalize(p["means"] - centre, dim=-1)
        return sh_to_rgb(p["sh0"], p["shN"], dirs, degree)

    def _semantic_inputs(self, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``[N, point_dim]`` attention inputs and ``[N, code_dim]`` label codes of all Gaussians (or those of
        ``idx``) from the field; for lifted (fused) semantics the stored ``[N, E]`` features and zero (the field's)
        codes."""
        if self.lifted_h is not None:  # lifted (or fused) features; label codes from the field if it has one
            h = self.lifted_h if idx is None else self.lifted_h[idx]
            code = (self._field_inputs(idx)[1] if self.field is not None
                    else h.new_zeros(h.shape[0], self.settings.semantic.code_dim))
            return h, code
        return self._field_inputs(idx)

    def _field_inputs(self, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The semantic field's ``[N, point_dim]`` features and ``[N, code_dim]`` label codes (or those of ``idx``)."""
        p = self.params
        means, app = p["means"].detach(), gaussian_appearance(p["sh0"], p["shN"])
        if idx is not None:
            means, app = means[idx], app[idx]
        if self.cfg.appearance_scale != 1.0:
            app = app * self.cfg.appearance_scale
        if self.contraction is not None:
            means = self.contraction.contract(means)
        return self.field(normalise(means, self.field_box), app)

    def _semantic(self) -> tuple[Tensor, Tensor]:
        """``[N, E]`` attention outputs (over all Gaussians, weighted by opacity) and ``[N, code_dim]`` label codes.

        They do not depend on the camera, so outside training (no autograd) they are computed
        once and cached; any parameter update (a training step, loading) clears the cache.
        """
        if self._semantic_cache is not None and not torch.is_grad_enabled():
            return self._semantic_cache
        feat, code = self._semantic_inputs()
        if self.lifted_h is not None:  # the lifted features are the outputs themselves
            self._semantic_cache = (feat, code) if not torch.is_grad_enabled() else None
            return feat, code
        h = self.heads.point_embedding(feat, torch.sigmoid(self.params["opacities"]).detach())
        self._semantic_cache = (h, code) if not torch.is_grad_enabled() else None
        return h, code

    def _raster(self, viewmat: Tensor, K: Tensor, W: int, H: int, rgb: bool, semantic: bool,
                label: bool | None = None, class_scores: Tensor | None = None) -> tuple[dict[str, Tensor], dict]:
        """Rasterize the requested channel groups in one pass; returns images ``[H, W, k]``, ``alpha`` and info.

        ``semantic`` adds the attention outputs ``h``; ``label`` (default: same as ``semantic``) the label
        codes; ``class_scores`` ``[N, C]`` per-Gaussian class scores (channel group ``scores``).
        """
        p = self.params
        label = semantic if label is None else label
        channels = self._semantic() if semantic or label else None
        parts, names = [], []
        if rgb:
            parts.append(self._rgb(viewmat, self.sh_degree))
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
        if not parts:  # only opacity asked for
            parts.append(p["means"].new_zeros(p["means"].shape[0], 1))
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

    def render_outputs(self, cameras: Cameras, index: int, outputs: tuple[str, ...], text: Tensor | None
                       ) -> dict[str, Tensor]:
        want = set(outputs)
        viewmat, K, W, H = _scaled_camera(cameras, index, 1.0)
        scores = None
        if "segmentation" in want and "logits" not in want:  # C channels instead of E (see class_directions)
            scores = self._semantic()[0] @ self.heads.class_directions(text).T
        img, _ = self._raster(viewmat, K, W, H, rgb="rgb" in want, semantic=bool(want & {"feature", "logits"}),
                              label="label" in want, class_scores=scores)
        result: dict[str, Tensor] = {"acc": img["alpha"]}
        if scores is not None:
            result["segmentation"] = img["scores"].argmax(dim=-1)
        if "rgb" in img:
            result["rgb"] = img["rgb"]
        if "feature" in want:
            result["feature"] = self.heads.decode(img["h"])
        if "logits" in want:
            result["logits"] = self.heads.feature_logits(img["h"], text)
            result["segmentation"] = result["logits"].argmax(dim=-1)
        if "label" in want:
            result["label"] = self.heads.label(img["code"])
        if "depth" in want:
            result["depth"] = self._depth(viewmat, K, W, H)
        return result

    def _depth(self, viewmat: Tensor, K: Tensor, W: int, H: int) -> Tensor:
        p = self.params
        z = (p["means"] @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2:3]
        img, alpha, _ = rasterize(p["means"], p["quats"], torch.exp(p["scales"]), torch.sigmoid(p["opacities"]),
                                  z, viewmat, K, W, H)
        return img[..., 0] / alpha[..., 0].clamp_min(1e-6)


    # ------------------------------------------------------------------ export
    @torch.no_grad()
    def points(self, cameras: Cameras | None = None, views: list[int] | None = None) -> PointSet:
        """The Gaussians: centres, base colours, 3DGS attributes and (decoded) semantic outputs; no cameras needed."""
        p = {k: v.detach().cpu() for k, v in self.params.items()}
        feature = label = None
        if self.heads is not None:
            h, code = self._semantic()
            feature, label = self.heads.decode(h).cpu(), self.heads.label(code).cpu()
        return PointSet(p["means"], (SH_C0 * p["sh0"][:, 0] + 0.5).clamp(0, 1), feature, label,
                        GaussianAttributes(p["scales"], p["quats"], p["opacities"], p["sh0"], p["shN"]))


__all__ = ["GsplatBackend"]
