"""Analytic ray-primitive intersection, vectorised over rays.

Each primitive maps rays ``o, d`` (``[R, 3]`` each, ``d`` unit length) to the
hit distance ``t`` (``[R]``, ``inf`` on a miss) and the unit surface normal
facing the ray (``[R, 3]``). Only the few primitives of a synthetic scene are
looped over; rays are never looped over.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

EPS = 1e-4
INF = float("inf")


def _face_ray(n: Tensor, d: Tensor) -> Tensor:
    """Flip normals to face against the ray direction."""
    sign = torch.where((n * d).sum(-1, keepdim=True) > 0, -1.0, 1.0)
    return n * sign


@dataclass
class Plane:
    """Infinite plane ``normal . x = offset``."""

    normal: tuple[float, float, float]
    offset: float

    def hit(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        n = torch.tensor(self.normal, dtype=o.dtype)
        n = n / n.norm()
        denom = d @ n
        t = (self.offset - o @ n) / torch.where(denom.abs() < 1e-9, torch.full_like(denom, 1e-9), denom)
        t = torch.where(t > EPS, t, torch.full_like(t, INF))
        return t, _face_ray(n.expand_as(d), d)


@dataclass
class Sphere:
    center: tuple[float, float, float]
    radius: float

    def hit(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        c = torch.tensor(self.center, dtype=o.dtype)
        oc = o - c
        b = (oc * d).sum(-1)
        disc = b * b - ((oc * oc).sum(-1) - self.radius ** 2)
        sq = disc.clamp_min(0).sqrt()
        t0, t1 = -b - sq, -b + sq
        t = torch.where(t0 > EPS, t0, t1)
        t = torch.where((disc >= 0) & (t > EPS), t, torch.full_like(t, INF))
        p = o + d * torch.where(torch.isfinite(t), t, torch.zeros_like(t))[:, None]
        return t, _face_ray((p - c) / self.radius, d)


@dataclass
class Box:
    """Axis-aligned box from its centre and half extents."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]

    def hit(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        c = torch.tensor(self.center, dtype=o.dtype)
        h = torch.tensor(self.half, dtype=o.dtype)
        safe_d = torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
        t1 = (c - h - o) / safe_d
        t2 = (c + h - o) / safe_d
        tnear = torch.minimum(t1, t2)
        tfar = torch.maximum(t1, t2)
        t_enter, axis = tnear.max(dim=-1)
        t_exit = tfar.min(dim=-1).values
        inside = t_enter <= EPS
        t = torch.where(inside, t_exit, t_enter)
        t = torch.where((t_exit >= t_enter) & (t > EPS), t, torch.full_like(t, INF))
        n = torch.nn.functional.one_hot(axis, 3).to(o.dtype)
        return t, _face_ray(n, d)


@dataclass
class Cylinder:
    """Capped cylinder whose axis is parallel to world y, spanning ``y0 <= y <= y1``."""

    center_xz: tuple[float, float]
    radius: float
    y0: float
    y1: float

    def hit(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        cx, cz = self.center_xz
        ox, oz = o[:, 0] - cx, o[:, 2] - cz
        a = d[:, 0] ** 2 + d[:, 2] ** 2
        b = 2 * (ox * d[:, 0] + oz * d[:, 2])
        cc = ox ** 2 + oz ** 2 - self.radius ** 2
        disc = b * b - 4 * a * cc
        sq = disc.clamp_min(0).sqrt()
        a_safe = a.clamp_min(1e-12)
        t_side = (-b - sq) / (2 * a_safe)
        y_side = o[:, 1] + t_side * d[:, 1]
        side_ok = (disc >= 0) & (t_side > EPS) & (y_side >= self.y0) & (y_side <= self.y1)
        t_side = torch.where(side_ok, t_side, torch.full_like(t_side, INF))
        p = o + d * torch.where(side_ok, t_side, torch.zeros_like(t_side))[:, None]
        n_side = torch.stack([p[:, 0] - cx, torch.zeros_like(a), p[:, 2] - cz], -1) / self.radius

        t_best, n_best = t_side, n_side
        for y_cap in (self.y0, self.y1):
            dy = torch.where(d[:, 1].abs() < 1e-9, torch.full_like(a, 1e-9), d[:, 1])
            t_cap = (y_cap - o[:, 1]) / dy
            q = o + d * t_cap[:, None]
            cap_ok = (t_cap > EPS) & ((q[:, 0] - cx) ** 2 + (q[:, 2] - cz) ** 2 <= self.radius ** 2)
            t_cap = torch.where(cap_ok, t_cap, torch.full_like(t_cap, INF))
            closer = t_cap < t_best
            n_cap = torch.tensor([0.0, 1.0, 0.0], dtype=o.dtype).expand_as(d)
            t_best = torch.where(closer, t_cap, t_best)
            n_best = torch.where(closer[:, None], n_cap, n_best)
        return t_best, _face_ray(n_best, d)


def trace(primitives: list, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest hit over all primitives.

    Returns:
        ``t`` ``[R]`` (inf on a miss), ``index`` ``[R]`` int64 of the primitive hit
        (-1 on a miss), ``normal`` ``[R, 3]``.
    """
    ts, ns = zip(*(p.hit(o, d) for p in primitives))
    t_all = torch.stack(ts)  # [P, R]
    n_all = torch.stack(ns)  # [P, R, 3]
    t, idx = t_all.min(dim=0)
    normal = n_all.gather(0, idx[None, :, None].expand(1, -1, 3))[0]
    idx = torch.where(torch.isfinite(t), idx, torch.full_like(idx, -1))
    return t, idx, normal
