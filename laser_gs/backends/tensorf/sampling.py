"""Ray parameterisation and sampling: NDC for forward-facing scenes, a contracted ball for unbounded
360-degree ones, a box for the rest (object captures).

Forward-facing scenes (cameras looking along +z of the recentred world, near
plane ``z = 1``) are warped to NDC by the projective map
``(x, y, z) -> (ax x / z, ay y / z, 1 - 2 / z)``, which maps the camera frustum
from the near plane to infinity into ``z' in [-1, 1]``; rays stay straight, and
``t' in [0, 1]`` covers near plane to infinity. (The usual LLFF formula is the
same map written for cameras looking along -z.)

Unbounded scenes (:mod:`laser_gs.data.unbounded`) sample the kept ball in equal world steps and the
contracted shell beyond it in equal steps of disparity (``1 / t``), which are near-equal steps of the
contracted coordinate; the volumes span the contracted ball ``[-2, 2]^3``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from laser_gs.data.cameras import Cameras
from laser_gs.data.unbounded import Contraction


def ndc_rays(origins: Tensor, dirs: Tensor, ax: float, ay: float, near: float = 1.0) -> tuple[Tensor, Tensor]:
    """World rays ``[R, 3]`` -> NDC rays (origin on the near plane, direction spanning t' in [0, 1])."""
    t = (near - origins[:, 2]) / dirs[:, 2]
    o = origins + t[:, None] * dirs
    ox, oy, oz = o.unbind(-1)
    dx, dy, dz = dirs.unbind(-1)
    o_ndc = torch.stack([ax * ox / oz, ay * oy / oz, 1.0 - 2.0 * near / oz], dim=-1)
    d_ndc = torch.stack([ax * (dx / dz - ox / oz), ay * (dy / dz - oy / oz), 2.0 * near / oz], dim=-1)
    return o_ndc, d_ndc


def ndc_scale(cameras: Cameras) -> tuple[float, float]:
    """``(ax, ay) = (2 fx / W, 2 fy / H)`` of the first camera (forward-facing captures share intrinsics)."""
    K = cameras.K[0]
    return float(2 * K[0, 0] / cameras.width), float(2 * K[1, 1] / cameras.height)


def ndc_aabb(cameras: Cameras, ax: float, ay: float, margin: float = 0.05) -> Tensor:
    """Box ``[2, 3]`` in NDC holding every camera's frustum (corner rays from near plane to infinity)."""
    W, H = cameras.width, cameras.height
    u = torch.tensor([0.0, W, 0.0, W, W / 2])
    v = torch.tensor([0.0, 0.0, H, H, H / 2])
    pts = []
    for i in range(len(cameras)):
        o, d = cameras.rays_at(i, u, v)
        on, dn = ndc_rays(o, d, ax, ay)
        pts += [on, on + dn]
    pts = torch.cat(pts)
    lo, hi = pts.min(0).values, pts.max(0).values
    pad = margin * (hi - lo)
    lo, hi = lo - pad, hi + pad
    lo[2], hi[2] = -1.0, 1.0
    return torch.stack([lo, hi])


def ray_box(origins: Tensor, dirs: Tensor, aabb: Tensor, near: float = 0.0) -> tuple[Tensor, Tensor]:
    """Entry and exit distance of rays ``[R, 3]`` through the box; exit <= entry means a miss."""
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (aabb[0] - origins) / safe
    t1 = (aabb[1] - origins) / safe
    t_in = torch.minimum(t0, t1).amax(dim=-1).clamp_min(near)
    t_out = torch.maximum(t0, t1).amin(dim=-1)
    return t_in, t_out


@dataclass
class RaySamples:
    """``S`` samples on each of ``R`` rays, in normalised box coordinates."""

    xyz: Tensor  # [R, S, 3] in [-1, 1]^3 when inside
    deltas: Tensor  # [R, S] segment lengths (world or NDC units)
    t: Tensor  # [R, S] ray parameter (depth)
    inside: Tensor  # [R, S] bool


def sample_rays(origins: Tensor, dirs: Tensor, aabb: Tensor, n_samples: int, ndc: bool, step: float | None,
                generator: torch.Generator | None = None) -> RaySamples:
    """Stratified samples (jittered by one bin when ``generator`` is given, i.e. in training).

    NDC: ``n_samples`` bins over t' in [0, 1]. Box: ``n_samples`` steps of ``step`` from the box entry.
    """
    R = origins.shape[0]
    dev = origins.device
    if ndc:
        t = torch.linspace(0.0, 1.0, n_samples + 1, device=dev)[:-1].expand(R, n_samples)
        bin_len = torch.full((R, 1), 1.0 / n_samples, device=dev)
        t_end = torch.ones(R, device=dev)
    else:
        t_in, t_end = ray_box(origins, dirs, aabb, near=0.05)
        t = t_in[:, None] + step * torch.arange(n_samples, device=dev, dtype=origins.dtype)
        bin_len = torch.full((R, 1), float(step), device=dev)
    if generator is not None:
        t = t + bin_len * torch.rand(t.shape, generator=generator).to(dev)
    else:
        t = t + 0.5 * bin_len
    xyz = origins[:, None] + t[..., None] * dirs[:, None]
    norm = (xyz - aabb[0]) / (aabb[1] - aabb[0]) * 2 - 1
    inside = (norm.abs() <= 1).all(dim=-1) & (t < t_end[:, None])
    deltas = bin_len.expand_as(t) * dirs.norm(dim=-1, keepdim=True)
    return RaySamples(norm, deltas, t, inside)


#: the contracted shell is sampled up to this many kept-ball radii (disparity 1 / FAR_RADII of the radius)
FAR_RADII = 1000.0


def contracted_sample_counts(contraction: Contraction, step: float, n_samples: int) -> tuple[int, int, float]:
    """Split ``n_samples`` into ball and shell samples: ``(n_ball, n_shell, ball_step)``.

    The ball takes two thirds, enough equal steps to cross its diameter (the step grows when capped).
    """
    n_ball = max(2, round(n_samples * 2 / 3))
    ball_step = max(float(step), 2 * contraction.radius / n_ball)
    return n_ball, max(2, n_samples - n_ball), ball_step


def sample_contracted(origins: Tensor, dirs: Tensor, contraction: Contraction, n_samples: int, step: float,
                      generator: torch.Generator | None = None, near: float = 0.05) -> RaySamples:
    """Samples of unit-direction rays ``[R, 3]`` in a contracted scene; ``xyz`` = contracted point / 2.

    Ball: equal world steps from ``near`` to where the ray leaves the ball (later ones are marked outside).
    Shell: equal steps of disparity from the ball's exit to ``FAR_RADII`` radii; each sample's ``delta`` is
    the world length of its disparity bin, so density keeps world units everywhere.
    """
    R, dev, dt = origins.shape[0], origins.device, origins.dtype
    n_ball, n_shell, ball_step = contracted_sample_counts(contraction, step, n_samples)
    oc = origins - origins.new_tensor(contraction.center)
    b = (oc * dirs).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - contraction.radius ** 2)
    t_exit = torch.where(disc > 0, -b + disc.clamp_min(0).sqrt(), torch.full_like(b, near)).clamp_min(near)
    jitter_b = (torch.rand(R, n_ball, generator=generator).to(dev, dt) if generator is not None
                else torch.full((R, n_ball), 0.5, device=dev, dtype=dt))
    t_ball = near + ball_step * (torch.arange(n_ball, device=dev, dtype=dt) + jitter_b)
    in_ball = t_ball < t_exit[:, None]
    # shell: bin edges equally spaced in disparity
    d0 = 1.0 / t_exit[:, None]
    d1 = 1.0 / (t_exit[:, None] + FAR_RADII * contraction.radius)
    edges = d0 + (d1 - d0) * torch.linspace(0.0, 1.0, n_shell + 1, device=dev, dtype=dt)
    jitter_s = (torch.rand(R, n_shell, generator=generator).to(dev, dt) if generator is not None
                else torch.full((R, n_shell), 0.5, device=dev, dtype=dt))
    disp = edges[:, :-1] + (edges[:, 1:] - edges[:, :-1]) * jitter_s
    t_shell = 1.0 / disp
    t = torch.cat([t_ball, t_shell], dim=1)
    deltas = torch.cat([torch.full_like(t_ball, ball_step), 1.0 / edges[:, 1:] - 1.0 / edges[:, :-1]], dim=1)
    xyz = contraction.contract(origins[:, None] + t[..., None] * dirs[:, None]) / 2
    inside = torch.cat([in_ball, torch.ones_like(t_shell, dtype=torch.bool)], dim=1)
    return RaySamples(xyz, deltas, t, inside)


class OccupancyGrid:
    """Coarse boolean grid of where density is non-negligible (TensoRF's alpha mask).

    Samples in empty cells are dropped before any volume is evaluated; this is
    where most of the speed of box scenes comes from.
    """

    def __init__(self, resolution: list[int], device: torch.device | str = "cpu"):
        self.mask = torch.ones(resolution[2], resolution[1], resolution[0], dtype=torch.bool, device=device)

    def query(self, xyz: Tensor) -> Tensor:
        """``[P, 3]`` normalised points -> ``[P]`` bool (nearest cell)."""
        D, H, W = self.mask.shape
        size = torch.tensor([W, H, D], device=xyz.device)
        idx = ((xyz + 1) / 2 * size).long()
        idx = torch.minimum(idx.clamp_min(0), size - 1)
        return self.mask[idx[:, 2], idx[:, 1], idx[:, 0]]

    @torch.no_grad()
    def update(self, sigma_fn, step_length: float, distance_scale: float, threshold: float,
               chunk: int = 262144, contraction: Contraction | None = None, floor: float = 0.0) -> float:
        """Re-evaluate the density at cell centres; keep cells with alpha > threshold (dilated by one cell).

        With a ``contraction`` the grid spans the contracted ball and ``step_length`` is the ball's world step;
        shell cells are judged over their own, longer, world length (a faint far sky is still opaque there).
        Alpha is that of the density above ``floor`` (the field's density where it learnt nothing): over the
        long steps of a contracted scene the floor alone passes the threshold, and every cell would stay.
        Returns the occupied fraction.
        """
        D, H, W = self.mask.shape
        dev = self.mask.device
        zs, ys, xs = torch.meshgrid(torch.arange(D, device=dev), torch.arange(H, device=dev),
                                    torch.arange(W, device=dev), indexing="ij")
        cells = torch.stack([xs, ys, zs], dim=-1).reshape(-1, 3).float()
        xyz = (cells + 0.5) / torch.tensor([W, H, D], device=dev) * 2 - 1
        sigma = torch.cat([sigma_fn(xyz[i:i + chunk]) for i in range(0, xyz.shape[0], chunk)])
        if contraction is not None:
            y = xyz * 2
            step_length = step_length * contraction.world_per_contracted(y) / contraction.radius
        alpha = 1 - torch.exp(-(sigma - floor).clamp_min(0) * step_length * distance_scale)
        occ = (alpha > threshold).float().view(1, 1, D, H, W)
        self.mask = F.max_pool3d(occ, kernel_size=3, stride=1, padding=1)[0, 0] > 0
        return float(self.mask.float().mean())
