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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from laser_gs.data.cameras import Cameras, look_at
from laser_gs.data.images import write_png
from laser_gs.data.llff import opencv_to_llff
from laser_gs.features.precomputed import write_feature_dir
from laser_gs.synthetic.features import FeatureNoise, synthesize_features
from laser_gs.synthetic.primitives import Box, Cylinder, Plane, Sphere, trace

# World frame: x right, y down (gravity is +y), z away from the cameras.
FLOOR_Y = 1.5
LIGHT_DIR = torch.tensor([-0.35, -1.0, -0.55])  # towards the light


def _stripes(v: Tensor, period: float, sharp: float = 6.0) -> Tensor:
    return torch.sigmoid(sharp * torch.sin(2 * math.pi * v / period))


def _wall_texture(p: Tensor) -> Tensor:
    row = torch.floor(p[:, 1] / 0.35)
    shift = (row % 2) * 0.35
    mortar = ((p[:, 1] / 0.35) % 1 < 0.1) | (((p[:, 0] + shift) / 0.7) % 1 < 0.05)
    base = torch.tensor([0.86, 0.84, 0.80]) * (0.93 + 0.07 * torch.sin(7.0 * p[:, 0] + 3.0 * p[:, 1]))[:, None]
    return torch.where(mortar[:, None], torch.tensor([0.62, 0.60, 0.58]), base)


def _floor_texture(p: Tensor) -> Tensor:
    plank = _stripes(p[:, 0], 0.55, 20.0)
    grain = 0.85 + 0.15 * torch.sin(9.0 * p[:, 2] + 2.5 * torch.sin(4.0 * p[:, 0]))
    base = torch.tensor([0.58, 0.38, 0.20]) * (0.8 + 0.2 * plank)[:, None]
    return base * grain[:, None]


def _speckle(color: tuple[float, float, float], freq: float) -> Callable[[Tensor], Tensor]:
    def tex(p: Tensor) -> Tensor:
        s = torch.sin(freq * p[:, 0]) * torch.sin(freq * p[:, 1] + 1.0) * torch.sin(freq * p[:, 2] + 2.0)
        return torch.tensor(color) * (0.85 + 0.15 * s)[:, None]
    return tex


def _banded(color: tuple[float, float, float], band: tuple[float, float, float], axis: int,
            period: float) -> Callable[[Tensor], Tensor]:
    def tex(p: Tensor) -> Tensor:
        w = _stripes(p[:, axis], period, 8.0)[:, None]
        return torch.tensor(color) * (1 - 0.35 * w) + torch.tensor(band) * 0.35 * w
    return tex


def _checker(c1: tuple[float, float, float], c2: tuple[float, float, float], size: float
             ) -> Callable[[Tensor], Tensor]:
    def tex(p: Tensor) -> Tensor:
        k = (torch.floor(p[:, 0] / size) + torch.floor(p[:, 1] / size) + torch.floor(p[:, 2] / size)) % 2
        return torch.where(k[:, None] > 0, torch.tensor(c1), torch.tensor(c2))
    return tex


@dataclass
class SceneObject:
    """One labeled primitive with a solid (3D) texture."""

    name: str
    primitive: object
    texture: Callable[[Tensor], Tensor]
    anchor: tuple[float, float, float]  # a point inside the object, for reprojection tests


def default_objects() -> list[SceneObject]:
    """The tabletop layout. Class order = object order = ``classes.txt`` order."""
    return [
        SceneObject("brick wall", Plane((0, 0, 1), 8.0), _wall_texture, (0.0, -1.0, 8.0)),
        SceneObject("wooden floor", Plane((0, 1, 0), FLOOR_Y), _floor_texture, (0.0, FLOOR_Y, 6.5)),
        SceneObject("red apple", Sphere((-1.35, FLOOR_Y - 0.62, 5.0), 0.62),
                    _speckle((0.78, 0.10, 0.09), 23.0), (-1.35, FLOOR_Y - 0.62, 5.0)),
        SceneObject("red book", Box((0.55, FLOOR_Y - 0.32, 4.6), (0.75, 0.32, 0.5)),
                    _banded((0.72, 0.12, 0.11), (0.95, 0.85, 0.70), 1, 0.16), (0.55, FLOOR_Y - 0.32, 4.6)),
        SceneObject("blue mug", Cylinder((2.0, 5.7), 0.5, FLOOR_Y - 1.25, FLOOR_Y),
                    _banded((0.14, 0.28, 0.74), (0.90, 0.92, 0.95), 0, 0.18), (2.0, FLOOR_Y - 0.6, 5.7)),
        SceneObject("green ball", Sphere((-0.35, FLOOR_Y - 0.42, 3.5), 0.42),
                    _checker((0.20, 0.62, 0.24), (0.10, 0.40, 0.14), 0.2), (-0.35, FLOOR_Y - 0.42, 3.5)),
    ]


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
    """Forward-facing rig: centres on a jittered spiral in the z = 0 plane, all looking at ``target``."""
    g = torch.Generator().manual_seed(spec.seed)
    n = spec.views
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


def _shade(objects: list[SceneObject], o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """RGB ``[R, 3]``, class ``[R]`` and distance ``[R]`` for rays ``[R, 3]``."""
    t, idx, normal = trace([ob.primitive for ob in objects], o, d)
    if (idx < 0).any():
        raise RuntimeError("a ray escaped the synthetic scene; the wall plane should catch every ray")
    p = o + d * t[:, None]
    albedo = torch.zeros_like(p)
    for k, ob in enumerate(objects):
        sel = idx == k
        if sel.any():
            albedo[sel] = ob.texture(p[sel])
    light = LIGHT_DIR / LIGHT_DIR.norm()
    shade = 0.38 + 0.62 * (normal @ light).clamp_min(0)
    return (albedo * shade[:, None]).clamp(0, 1), idx, t


def render_scene(spec: SceneSpec, objects: list[SceneObject] | None = None) -> GeneratedScene:
    """Ray trace every view (loop over views only; each view is one batched trace)."""
    objects = objects or default_objects()
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
        feats, text, text_aug = synthesize_features(scene.labels, len(scene.classes), spec.feature_dim,
                                                    spec.feature_noise, seed=spec.seed)
        write_feature_dir(out / "features", dict(zip(names, feats)), text, text_aug,
                          model="synthetic (laser make-scene)",
                          extra_meta={"noise": asdict(spec.feature_noise), "seed": spec.seed})

    meta = {"generator": "laser make-scene", "spec": asdict(spec), "classes": scene.classes,
            "annotated": scene.annotated, "anchors": scene.anchors.tolist(),
            "world": "file coordinates of poses_bounds.npy; x right, y down, z forward"}
    (out / "scene.json").write_text(json.dumps(meta, indent=2))


def make_scene(out: Path, spec: SceneSpec | None = None, with_features: bool = True) -> GeneratedScene:
    """Render and write a synthetic labeled scene; returns the in-memory result."""
    spec = spec or SceneSpec()
    scene = render_scene(spec)
    write_scene(out, spec, scene, with_features=with_features)
    return scene
