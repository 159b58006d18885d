"""Rendering the Gaussians: cameras at a scale, view-dependent colours, channel groups in one rasterization, depth.

Every function reads the parameters as stored (log-scales, opacity logits, SH coefficients) and goes through
:func:`~laser_gs.backends.gsplat.raster.rasterize` (gsplat on CUDA, our tiled rasterizer on CPU).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from laser_gs.backends.gsplat.raster import rasterize
from laser_gs.data.cameras import Cameras
from laser_gs.spherical_harmonics import SH_C0, sh_to_rgb


def scaled_camera(cameras: Cameras, index: int, scale: float) -> tuple[Tensor, Tensor, int, int]:
    """``viewmat`` ``[4, 4]``, ``K`` ``[3, 3]``, width, height of camera ``index`` rendered at ``scale``."""
    cam = cameras.scaled(index, scale)
    return torch.linalg.inv(cam.c2w[0]), cam.K[0], cam.width, cam.height


def base_colour(sh0: Tensor) -> Tensor:
    """``[N, 3]`` view-independent colour of Gaussians from their SH band 0 ``[N, 1, 3]`` (not clamped)."""
    return SH_C0 * sh0[:, 0] + 0.5


def gaussian_rgb(params: nn.ParameterDict, viewmat: Tensor, degree: int) -> Tensor:
    """``[N, 3]`` colours of the Gaussians seen from the camera of ``viewmat`` (SH up to ``degree``)."""
    centre = torch.linalg.inv(viewmat)[:3, 3]
    dirs = torch.nn.functional.normalize(params["means"] - centre, dim=-1)
    return sh_to_rgb(params["sh0"], params["shN"], dirs, degree)


def render_channels(params: nn.ParameterDict, groups: list[tuple[str, Tensor]], viewmat: Tensor, K: Tensor,
                    width: int, height: int, background: float = 0.0) -> tuple[dict[str, Tensor], dict]:
    """Rasterize named per-Gaussian channel groups (``[N, k]`` each) in one pass.

    Returns ``{name: [H, W, k]}`` plus ``alpha`` ``[H, W]``, and gsplat's ``info`` (densification reads it).
    ``background`` fills the ``rgb`` group where the Gaussians do not cover a pixel; other groups get 0.
    """
    if not groups:  # only the opacity asked for
        groups = [("_", params["means"].new_zeros(params["means"].shape[0], 1))]
    colors = torch.cat([g for _, g in groups], dim=-1)
    bg = torch.zeros(colors.shape[1], device=colors.device)
    start = 0
    for name, g in groups:
        if name == "rgb":
            bg[start:start + 3] = background
        start += g.shape[1]
    img, alpha, info = rasterize(params["means"], params["quats"], torch.exp(params["scales"]),
                                 torch.sigmoid(params["opacities"]), colors, viewmat, K, width, height, background=bg)
    out, start = {"alpha": alpha[..., 0]}, 0
    for name, g in groups:
        out[name] = img[..., start:start + g.shape[1]]
        start += g.shape[1]
    return out, info


def render_depth(params: nn.ParameterDict, viewmat: Tensor, K: Tensor, width: int, height: int) -> Tensor:
    """``[H, W]`` expected camera depth (alpha-normalised)."""
    z = (params["means"] @ viewmat[:3, :3].T + viewmat[:3, 3])[:, 2:3]
    out, _ = render_channels(params, [("z", z)], viewmat, K, width, height)
    return out["z"][..., 0] / out["alpha"].clamp_min(1e-6)
