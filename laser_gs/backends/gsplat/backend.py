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

from laser_gs.backends.gsplat.cache import TensorKeyedCache
from laser_gs.backends.gsplat.config import PRESETS, GsplatSettings
from laser_gs.backends.gsplat.lift import best_basis, lift_clip_targets
from laser_gs.backends.gsplat.model import cap_gaussians, empty_params, initial_gaussians, seed_points
from laser_gs.backends.gsplat.render import base_colour, gaussian_rgb, render_channels, render_depth, scaled_camera
from laser_gs.backends.gsplat.semantic_field import field_inputs, field_state, load_field, new_field
from laser_gs.backends.protocol import Backend, ParamGroup, ReconstructionLoss, SemanticBatch, Step
from laser_gs.backends.registry import register_backend
from laser_gs.data.cameras import Cameras
from laser_gs.data.triangulate import MIN_POINTS
from laser_gs.data.scene import Scene
from laser_gs.data.unbounded import Contraction, scene_contraction
from laser_gs.export.records import GaussianAttributes, PointSet
from laser_gs.semantics.field import SemanticField
from laser_gs.semantics.point_smoothing import bilateral_weights, smooth_features
from laser_gs.spherical_harmonics import SH_C0
from laser_gs.training.rays import step_generator
from laser_gs.training.semantic import FeatureTargets
from laser_gs.training.settings import TrainingSettings
from laser_gs.training.ssim import ssim


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
        #: the camera-independent per-Gaussian semantic outputs, reused while their inputs are unchanged
        self._semantic_cache: TensorKeyedCache[tuple[Tensor, Tensor]] = TensorKeyedCache()
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
        return seed_points(scene, self.cfg.init_from, self.console, MIN_POINTS)

    def setup(self, scene: Scene, settings: TrainingSettings, dim: int | None, seed: int) -> None:
        from gsplat.strategy import DefaultStrategy

        self.settings = settings
        cfg = self.cfg
        self.seed = seed
        self.background = 1.0 if (not scene.forward_facing and scene.background == "white") else 0.0
        self.contraction = (scene_contraction(scene.cameras, scene.aabb, scene.forward_facing)
                            if cfg.unbounded == "auto" else None)
        self.params, bg_scale = initial_gaussians(scene, cfg, torch.Generator().manual_seed(self.seed),
                                                  self.sparse_points(scene), self.contraction, self.console)
        self.params = self.params.to(self.device)
        self.build_heads(dim)
        self.field, self.lifted = None, None
        centres = scene.cameras.centers
        self.scene_scale = float((centres - centres.mean(0)).norm(dim=-1).max()) * 1.1 or 1.0
        # far Gaussians are large by right: gsplat prunes any above 0.1 scene scales after its first opacity
        # reset, which would remove the background sphere, so that limit is raised above the sphere's splats
        prune_scale3d = max(0.1, 2 * bg_scale / self.scene_scale) if bg_scale else 0.1
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
                "field": field_state(self.field, self.field_box),
                "background": self.background, "sh_degree": self.sh_degree,
                "contraction": self.contraction.to_dict() if self.contraction is not None else None,
                "lifted_h": self.lifted_h.cpu() if self.lifted_h is not None else None}

    def load_model_state(self, state: dict[str, Any]) -> None:
        self.params = empty_params(int(state["n"]), self.cfg.sh_degree)
        self.params.load_state_dict(state["params"])
        self.params = self.params.to(self.device)
        self.field, self.field_box = load_field(state.get("field"), self.device)
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
            with torch.random.fork_rng(devices=[]):  # the same initial field whether resumed or not
                torch.manual_seed(self.seed * 1_000_003 + step)
                self.field, self.field_box = new_field(self.params, self.cfg, self.settings.semantic,
                                                       self.contraction)
        if self.lifted is None:
            self.lifted = self.lift_targets(targets)

    def reconstruction_loss(self, step: Step) -> ReconstructionLoss:
        cfg, it = self.cfg, step.index
        torch.manual_seed(self.seed * 1_000_003 + it)  # strategy randomness, reproducible on resume
        self.sh_degree = min(cfg.sh_degree, it // cfg.sh_degree_every)
        gen = step_generator(self.seed, it)
        v = self.train_views[int(torch.randint(len(self.train_views), (1,), generator=gen))]
        scale = 0.5 if it < cfg.coarse_until else 1.0  # coarse-to-fine: early steps at half resolution
        viewmat, K, W, H = scaled_camera(self.cameras, v, scale)
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
            cap_gaussians(self.params, optimizers, self.strategy_state, self.cfg.max_gaussians)
        return False

    def semantic_batch(self, step: Step, targets: FeatureTargets, joint: bool) -> SemanticBatch:
        """``batch_size`` Gaussians drawn by visibility, against their lifted targets (colours are not tuned)."""
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
        clip, _, weight = self.lifted if self.lifted is not None else self.lift_targets(targets)
        self.lifted_h = self._smooth(self._lift_basis(clip, weight))

    @torch.no_grad()
    def finish_semantics(self, targets: FeatureTargets) -> bool:
        """``gsplat.fuse_lift``: every Gaussian's feature becomes ``unit(trained) + unit(lifted)``, stored in the
        best ``E``-dim basis as :meth:`lift` stores features; label codes still come from the field."""
        if not self.cfg.fuse_lift:
            return False
        clip, _, weight = self.lifted if self.lifted is not None else self.lift_targets(targets)
        h, _ = self._semantic()
        trained = torch.nn.functional.normalize(self.heads.decode(h), dim=-1)
        self.lifted_h = self._smooth(self._lift_basis(trained + torch.nn.functional.normalize(clip, dim=-1), weight))
        return True

    @torch.no_grad()
    def _smooth(self, coeffs: Tensor) -> Tensor:
        """``gsplat.smooth_iters``: the bilateral diffusion of :mod:`~laser_gs.semantics.point_smoothing` over the
        Gaussians (centres, base colours, opacities) on their ``[N, E]`` coefficients. The decoder is an
        orthonormal basis, so directions (what the text is compared with) are the same as in CLIP space."""
        c = self.cfg
        if c.smooth_iters <= 0 or coeffs.shape[0] < 2:
            return coeffs
        p = self.params
        idx, w = bilateral_weights(p["means"].detach(), base_colour(p["sh0"]).detach(),
                                   torch.sigmoid(p["opacities"].detach()), c.smooth_neighbours, c.smooth_space,
                                   c.smooth_colour)
        return smooth_features(coeffs, idx, w, c.smooth_iters) * coeffs.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def _lift_basis(self, clip: Tensor, weight: Tensor) -> Tensor:
        """Set the decoder to the best ``E``-dim basis of lifted features ``[N, D]`` (:func:`lift.best_basis`);
        returns the Gaussians' coefficients ``[N, E]``."""
        U, coeffs = best_basis(clip, weight, self.settings.semantic.embed_dim)
        self.heads.attention.unzip.weight.copy_(U)
        return coeffs

    def lift_targets(self, targets: FeatureTargets) -> tuple[Tensor, Tensor | None, Tensor]:
        """Every Gaussian's CLIP feature, text-augmentation targets and visibility over the training views
        (:func:`lift.lift_clip_targets` at ``lift_scale``)."""
        return lift_clip_targets(self.params, self.cameras, self.train_views, targets, self.cfg.lift_scale,
                                 self.cfg.lift_dims, self.console)

    @torch.no_grad()
    def select_gaussians(self, idx: Tensor) -> None:
        """Keep the Gaussians ``idx`` ``[M]`` (int, repeats allowed) with all their per-Gaussian state: the
        parameters, the lifted targets and the lifted or fused features. For tools (growing or thinning a
        trained model), not for training: the optimizers' state is not touched."""
        idx = idx.to(self.params["means"].device)
        for name, value in list(self.params.items()):
            self.params[name] = nn.Parameter(value[idx].clone(), requires_grad=value.requires_grad)
        if self.lifted_h is not None:
            self.lifted_h = self.lifted_h[idx].clone()
        if self.lifted is not None:
            self.lifted = tuple(t[idx].clone() if t is not None else None for t in self.lifted)

    # ------------------------------------------------------------------ rendering core
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
        return field_inputs(self.field, self.field_box, self.params, self.contraction, self.cfg.appearance_scale,
                            idx)

    def _semantic(self) -> tuple[Tensor, Tensor]:
        """``[N, E]`` attention outputs (over all Gaussians, weighted by opacity) and ``[N, code_dim]`` label codes.

        They do not depend on the camera, so outside training (no autograd) they are computed once and reused
        until a tensor they are computed from changes (:class:`~cache.TensorKeyedCache`).
        """
        return self._semantic_cache.get(self._semantic_sources(), self._compute_semantic)

    def _semantic_sources(self) -> list[Tensor]:
        p = self.params
        sources = [p["means"], p["sh0"], p["shN"], p["opacities"]]
        for module in (self.field, self.heads):
            sources += list(module.parameters()) if module is not None else []
        return sources + [t for t in (self.field_box, self.lifted_h) if t is not None]

    def _compute_semantic(self) -> tuple[Tensor, Tensor]:
        feat, code = self._semantic_inputs()
        if self.lifted_h is not None:  # the lifted features are the outputs themselves
            return feat, code
        return self.heads.point_embedding(feat, torch.sigmoid(self.params["opacities"]).detach()), code

    def _raster(self, viewmat: Tensor, K: Tensor, W: int, H: int, rgb: bool, semantic: bool,
                label: bool | None = None, class_scores: Tensor | None = None) -> tuple[dict[str, Tensor], dict]:
        """Rasterize the requested channel groups in one pass; returns images ``[H, W, k]``, ``alpha`` and info.

        ``semantic`` adds the attention outputs ``h``; ``label`` (default: same as ``semantic``) the label
        codes; ``class_scores`` ``[N, C]`` per-Gaussian class scores (channel group ``scores``).
        """
        label = semantic if label is None else label
        channels = self._semantic() if semantic or label else None
        groups = [("rgb", gaussian_rgb(self.params, viewmat, self.sh_degree))] if rgb else []
        groups += [("scores", class_scores)] if class_scores is not None else []
        groups += [("h", channels[0])] if semantic else []
        groups += [("code", channels[1])] if label else []
        return render_channels(self.params, groups, viewmat, K, W, H, background=self.background)

    def render_outputs(self, cameras: Cameras, index: int, outputs: tuple[str, ...], text: Tensor | None
                       ) -> dict[str, Tensor]:
        want = set(outputs)
        viewmat, K, W, H = scaled_camera(cameras, index, 1.0)
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
            result["depth"] = render_depth(self.params, viewmat, K, W, H)
        return result

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
