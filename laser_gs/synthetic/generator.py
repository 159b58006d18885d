"""Procedural labeled scenes in the 3D-OVS layout (``laser make-scene``).

A forward-facing tabletop: a brick wall, a wooden floor and several textured
objects, two of them of similar red colour so that colour alone cannot tell
them apart. Rendered by vectorised analytic ray tracing (Lambertian shading,
view-independent, 2x2 supersampling for RGB), so every view is exactly
consistent with one 3D scene and per-pixel class labels are exact.

Written layout (see ``docs/data_formats.md``)::

    OUT/images/00.png ...            RGB views
    OUT/poses_bounds.npy             LLFF poses and per-view depth bounds
    OUT/segmentations/classes.txt    class prompts
    OUT/segmentations/<k>/<c>.png    GT masks of the annotated views (255 = in class)
    OUT/features/                    synthetic dense features (see synthetic.features)
    OUT/scene.json                   generator settings and object placement (world = file coordinates)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from torch import Tensor

from laser_gs.data.cameras import Cameras, look_at
from laser_gs.data.images import write_png
from laser_gs.data.llff import opencv_to_llff
from laser_gs.features.precomputed import write_feature_dir
from laser_gs.synthetic.features import FeatureNoise, synthesize_features
from laser_gs.synthetic.layouts import FLOOR_Y, Layout, SceneObject, random_layout, tabletop
from laser_gs.synthetic.primitives import trace

LIGHT_DIR = torch.tensor([-0.35, -1.0, -0.55])  # towards the light


def default_objects() -> list[SceneObject]:
    """The tabletop layout. Class order = object order = ``classes.txt`` order."""
    return tabletop().objects


@dataclass
class SceneSpec:
    """Generator settings (saved as ``scene.json``)."""

    width: int = 320
    height: int = 240
    views: int = 24
    annotated: int = 4
    seed: int = 0
    fov_x_deg: float = 60.0
    rig_radius: float = 0.7
    target: tuple[float, float, float] = (0.0, 0.55, 5.0)
    supersample: int = 2
    feature_dim: int = 512
    feature_noise: FeatureNoise = field(default_factory=FeatureNoise)
    #: "tabletop" (the six fixed classes) or "random" (see :func:`laser_gs.synthetic.layouts.random_layout`)
    layout: Literal["tabletop", "random"] = "tabletop"
    objects: int = 4  # random layout: objects besides the background
    similar: int = 2  # random layout: objects sharing one colour (>= 2 to have any)
    small: int = 0  # random layout: small objects
    camouflage: bool = False  # random layout: an object of its background's colour in front of it
    #: "forward" (a forward-facing rig, LLFF-like) or "orbit" (an arc around the objects, an open floor and sky)
    cameras: Literal["forward", "orbit"] = "forward"
    orbit_arc_deg: float = 240.0
    orbit_radius: float = 5.5
    noise: float = 1.0  # multiplies the features' error and noise strengths (1: the calibrated default)
    #: augmented-text embeddings written with the features: "none" (none: `laser train --text-aug` is refused),
    #: "sharper" (the repeated prompt modelled as text nearer its object's image features) or "noise" (the
    #: plain text plus a little noise, as earlier versions wrote)
    text_aug: Literal["none", "sharper", "noise"] = "none"

    def build_layout(self) -> Layout:
        if self.layout == "tabletop":
            if self.cameras == "orbit":
                raise ValueError("the tabletop layout has a wall behind it; use layout 'random' for orbit cameras")
            return tabletop()
        return random_layout(self.objects, self.similar, self.small, self.camouflage, self.cameras == "orbit",
                             self.seed)

    def noise_model(self, layout: Layout) -> FeatureNoise:
        """The feature noise with this layout's confusable groups and the ``noise`` multiplier applied."""
        n = self.feature_noise
        return replace(n, similar_pairs=layout.confusable, error_fraction=min(0.5, n.error_fraction * self.noise),
                       error_strength=min(1.0, n.error_strength * self.noise), token_noise=n.token_noise * self.noise,
                       smooth_noise=n.smooth_noise * self.noise)


@dataclass
class GeneratedScene:
    """What :func:`render_scene` produces, in memory.

    Attributes:
        images: ``[N, H, W, 3]`` float32 RGB.
        labels: ``[N, H, W]`` int64 class index per pixel (every pixel has one).
        depth: ``[N, H, W]`` float32 z-depth along the camera axis.
        cameras: the N cameras in world (= file) coordinates.
        classes: class prompts.
        annotated: indices of the views written with GT masks.
        anchors: ``[C, 3]`` a point inside each object.
    """

    images: Tensor
    labels: Tensor
    depth: Tensor
    cameras: Cameras
    classes: list[str]
    annotated: list[int]
    anchors: Tensor


def make_cameras(spec: SceneSpec) -> Cameras:
    """Forward-facing rig: centres on a jittered spiral in the z = 0 plane, all looking at ``target``; or
    (``cameras="orbit"``) an arc around the origin at a standing height, looking at the objects."""
    g = torch.Generator().manual_seed(spec.seed)
    n = spec.views
    if spec.cameras == "orbit":
        return _orbit_cameras(spec, g)
    k = torch.arange(n, dtype=torch.float32)
    angle = k * 2.399963  # golden angle: even coverage of the disc
    r = spec.rig_radius * torch.sqrt((k + 0.5) / n)
    jitter = 0.03 * torch.randn(n, 3, generator=g)
    eyes = torch.stack([r * torch.cos(angle), 0.5 * r * torch.sin(angle), torch.zeros(n)], -1) + jitter
    target = torch.tensor(spec.target)
    c2w = torch.stack([look_at(e, target + 0.05 * torch.randn(3, generator=g)) for e in eyes])
    fx = 0.5 * spec.width / math.tan(math.radians(spec.fov_x_deg) / 2)
    K = torch.tensor([[fx, 0, spec.width / 2], [0, fx, spec.height / 2], [0, 0, 1]]).expand(n, 3, 3).clone()
    return Cameras(c2w, K, spec.width, spec.height)


def _orbit_cameras(spec: SceneSpec, g: torch.Generator) -> Cameras:
    n = spec.views
    arc = math.radians(spec.orbit_arc_deg)
    angle = -math.pi / 2 - arc / 2 + arc * (torch.arange(n, dtype=torch.float32) + 0.5) / n
    radius = spec.orbit_radius * (1 + 0.06 * torch.randn(n, generator=g))
    height = FLOOR_Y - 1.9 + 0.35 * torch.randn(n, generator=g)  # y is down: about 1.9 above the floor
    eyes = torch.stack([radius * torch.cos(angle), height, radius * torch.sin(angle)], -1)
    target = torch.tensor([0.0, FLOOR_Y - 0.5, 0.0])
    c2w = torch.stack([look_at(e, target + 0.15 * torch.randn(3, generator=g)) for e in eyes])
    fx = 0.5 * spec.width / math.tan(math.radians(spec.fov_x_deg) / 2)
    K = torch.tensor([[fx, 0, spec.width / 2], [0, fx, spec.height / 2], [0, 0, 1]]).expand(n, 3, 3).clone()
    return Cameras(c2w, K, spec.width, spec.height)


def _shade(objects: list[SceneObject], o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """RGB ``[R, 3]``, class ``[R]`` and distance ``[R]`` for rays ``[R, 3]``."""
    t, idx, normal = trace([ob.primitive for ob in objects], o, d)
    if (idx < 0).any():
        raise RuntimeError("a ray escaped the synthetic scene; the wall plane or the sky should catch every ray")
    p = o + d * t[:, None]
    albedo = torch.zeros_like(p)
    for k, ob in enumerate(objects):
        sel = idx == k
        if sel.any():
            albedo[sel] = ob.texture(p[sel])
    light = LIGHT_DIR / LIGHT_DIR.norm()
    shade = 0.38 + 0.62 * (normal @ light).clamp_min(0)
    return (albedo * shade[:, None]).clamp(0, 1), idx, t


def render_scene(spec: SceneSpec, objects: list[SceneObject] | None = None,
                 on_view: Callable[[], None] | None = None) -> GeneratedScene:
    """Ray trace every view (loop over views only; each view is one batched trace)."""
    objects = objects or spec.build_layout().objects
    cams = make_cameras(spec)
    H, W, s = spec.height, spec.width, spec.supersample
    images, labels, depths = [], [], []
    for v in range(len(cams)):
        # RGB: s x s samples per pixel, averaged; labels and depth from the pixel centre.
        jj, ii = torch.meshgrid((torch.arange(W * s, dtype=torch.float32) + 0.5) / s,
                                (torch.arange(H * s, dtype=torch.float32) + 0.5) / s, indexing="xy")
        o, d = (t.reshape(-1, 3) for t in cams.rays_at(v, jj, ii))
        rgb, _, _ = _shade(objects, o, d)
        rgb = rgb.reshape(H, s, W, s, 3).mean(dim=(1, 3))
        jc, ic = torch.meshgrid(torch.arange(W, dtype=torch.float32) + 0.5,
                                torch.arange(H, dtype=torch.float32) + 0.5, indexing="xy")
        o, d = (t.reshape(-1, 3) for t in cams.rays_at(v, jc, ic))
        _, idx, t = _shade(objects, o, d)
        z = t * (d @ cams.forward[v])
        images.append(rgb)
        labels.append(idx.reshape(H, W))
        depths.append(z.reshape(H, W))
        if on_view is not None:
            on_view()
    n = spec.views
    annotated = sorted({int(round(x)) for x in np.linspace(0, n - 1, spec.annotated + 2)[1:-1]})
    return GeneratedScene(
        images=torch.stack(images), labels=torch.stack(labels), depth=torch.stack(depths), cameras=cams,
        classes=[ob.name for ob in objects], annotated=annotated,
        anchors=torch.tensor([ob.anchor for ob in objects], dtype=torch.float32),
    )


def write_scene(out: Path, spec: SceneSpec, scene: GeneratedScene, with_features: bool = True) -> None:
    """Write ``scene`` in the 3D-OVS layout (see module docstring)."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    n = spec.views
    digits = max(2, len(str(n - 1)))
    names = [f"{i:0{digits}d}" for i in range(n)]
    for name, img in zip(names, scene.images):
        write_png(out / "images" / f"{name}.png", img.numpy())

    c2w = scene.cameras.c2w[:, :3, :].double().numpy()
    llff = opencv_to_llff(c2w)
    hwf = np.array([spec.height, spec.width, float(scene.cameras.K[0, 0, 0])])[None, :, None].repeat(n, 0)
    poses = np.concatenate([llff, hwf], axis=2).reshape(n, 15)
    flat = scene.depth.reshape(n, -1)
    near = torch.quantile(flat, 0.001, dim=1).numpy() * 0.9
    far = torch.quantile(flat, 0.999, dim=1).numpy() * 1.1
    np.save(out / "poses_bounds.npy", np.concatenate([poses, near[:, None], far[:, None]], 1))

    seg = out / "segmentations"
    seg.mkdir(exist_ok=True)
    (seg / "classes.txt").write_text("\n".join(scene.classes) + "\n")
    for v in scene.annotated:
        for c, cls in enumerate(scene.classes):
            write_png(seg / str(v) / f"{cls}.png", ((scene.labels[v] == c).numpy() * 255).astype(np.uint8))

    if with_features:
        noise = spec.noise_model(spec.build_layout())
        feats, text, text_aug = synthesize_features(scene.labels, len(scene.classes), spec.feature_dim,
                                                    noise, seed=spec.seed, text_aug=spec.text_aug)
        write_feature_dir(out / "features", dict(zip(names, feats)), text, text_aug,
                          model="synthetic (laser make-scene)",
                          extra_meta={"noise": asdict(noise), "seed": spec.seed, "text_aug": spec.text_aug})

    meta = {"generator": "laser make-scene", "spec": asdict(spec), "classes": scene.classes,
            "annotated": scene.annotated, "anchors": scene.anchors.tolist(),
            "world": "file coordinates of poses_bounds.npy; x right, y down, z forward"}
    (out / "scene.json").write_text(json.dumps(meta, indent=2))


def make_scene(out: Path, spec: SceneSpec | None = None, with_features: bool = True,
               on_view: Callable[[], None] | None = None) -> GeneratedScene:
    """Render and write a synthetic labeled scene; returns the in-memory result (``on_view``: progress)."""
    spec = spec or SceneSpec()
    scene = render_scene(spec, on_view=on_view)
    write_scene(out, spec, scene, with_features=with_features)
    return scene
