"""Gaussian rasterization: ``gsplat.rasterization`` on CUDA, a tiled pure-PyTorch rasterizer on CPU.

Both take the same inputs and follow gsplat 1.5's conventions, so a model
renders the same on either device:

* camera: world-to-camera ``viewmat`` [4, 4] (OpenCV: x right, y down, z forward),
  intrinsics ``K`` [3, 3], pixel centres at +0.5;
* projection with the EWA Jacobian (``x/z`` and ``y/z`` clamped to 1.3x the field
  of view), a 0.3 px low-pass added to the 2D covariance (``eps2d``);
* extent ``ceil(e * sigma)`` per axis with ``e = min(3.33, sqrt(2 ln(opacity * 255)))``;
  Gaussians nearer than ``near_plane`` or fully outside the image are culled;
* front-to-back compositing in depth order, ``alpha = min(0.999,
  opacity * exp(-power))``, contributions below 1/255 skipped, and a pixel
  stops before the Gaussian that would bring its transmittance to 1e-4 or below.

The CPU rasterizer is autograd-differentiable and vectorised: Gaussians are
binned into tiles with ``repeat_interleave``, sorted by (tile, depth), and
composited as ``[tiles, gaussians, pixels]`` blocks with a cumulative product
along the depth axis; tiles are processed in chunks of similar length and long
tiles in blocks with the transmittance carried, to bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from laser_gs.memory import fit_chunk

TILE = 8  # pixels per tile side; results do not depend on it (see module docstring)
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """``[N, 4]`` quaternions (w, x, y, z), any norm -> ``[N, 3, 3]`` rotation matrices."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).view(-1, 3, 3)


@dataclass
class Projected:
    """Screen-space Gaussians of one camera (all ``N``; ``radii == 0`` marks culled ones)."""

    means2d: Tensor  # [N, 2] pixel coordinates
    depths: Tensor  # [N] camera z
    conics: Tensor  # [N, 3] inverse 2D covariance (a, b, c): power = a dx^2/2 + b dx dy + c dy^2/2
    radii: Tensor  # [N, 2] int32 extents in pixels


def project(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, viewmat: Tensor, K: Tensor,
            width: int, height: int, near_plane: float = 0.01, far_plane: float = 1e10,
            eps2d: float = 0.3) -> Projected:
    """EWA projection of ``N`` 3D Gaussians (differentiable in means, quats, scales)."""
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    p = means @ R.T + t
    x, y, z = p.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    zs = z.clamp_min(1e-6)
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lim_yp, lim_yn = (height - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    tx = zs * torch.minimum(torch.maximum(x / zs, -lim_xn), lim_xp)
    ty = zs * torch.minimum(torch.maximum(y / zs, -lim_yn), lim_yp)
    zero = torch.zeros_like(zs)
    J = torch.stack([fx / zs, zero, -fx * tx / zs ** 2, zero, fy / zs, -fy * ty / zs ** 2], -1).view(-1, 2, 3)
    M = quat_to_rotmat(quats) * scales[:, None, :]  # R S
    cov3 = M @ M.transpose(1, 2)
    JW = J @ R
    cov2 = JW @ cov3 @ JW.transpose(1, 2)
    a = cov2[:, 0, 0] + eps2d
    b = cov2[:, 0, 1]
    c = cov2[:, 1, 1] + eps2d
    det = a * c - b * b
    det_safe = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], dim=-1)
    with torch.no_grad():
        op = opacities.clamp_min(ALPHA_MIN)
        extend = torch.clamp(torch.sqrt(2.0 * torch.log(op / ALPHA_MIN)), max=3.33)
        rx = torch.ceil(extend * a.sqrt())
        ry = torch.ceil(extend * c.sqrt())
        mx, my = means2d[:, 0], means2d[:, 1]
        keep = ((z > near_plane) & (z < far_plane) & (det > 0) & (opacities >= ALPHA_MIN)
                & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height))
        radii = torch.stack([rx, ry], -1).where(keep[:, None], torch.zeros_like(means2d)).to(torch.int32)
    return Projected(means2d, z, conics, radii)


def _tile_pairs(proj: Projected, width: int, height: int) -> tuple[Tensor, Tensor, int, int]:
    """(tile id, gaussian id) of every tile each visible Gaussian touches, sorted by tile then depth."""
    tiles_x, tiles_y = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    vis = (proj.radii > 0).all(dim=-1).nonzero()[:, 0]
    m = proj.means2d.detach()[vis]
    r = proj.radii[vis].float()
    x0 = ((m[:, 0] - r[:, 0]) / TILE).floor().clamp(0, tiles_x - 1).long()
    x1 = ((m[:, 0] + r[:, 0]) / TILE).floor().clamp(0, tiles_x - 1).long()
    y0 = ((m[:, 1] - r[:, 1]) / TILE).floor().clamp(0, tiles_y - 1).long()
    y1 = ((m[:, 1] + r[:, 1]) / TILE).floor().clamp(0, tiles_y - 1).long()
    span_x = x1 - x0 + 1
    counts = span_x * (y1 - y0 + 1)
    owner = torch.repeat_interleave(torch.arange(len(vis), device=vis.device), counts)
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(owner.shape[0], device=vis.device) - first[owner]
    tile = (y0[owner] + k // span_x[owner]) * tiles_x + x0[owner] + k % span_x[owner]
    # one sort on (tile, depth rank): the rank among visible Gaussians breaks depth ties by index
    rank = torch.empty_like(vis)
    rank[torch.argsort(proj.depths.detach()[vis], stable=True)] = torch.arange(len(vis), device=vis.device)
    order = torch.argsort(tile * max(1, len(vis)) + rank[owner])
    return tile[order], vis[owner[order]], tiles_x, tiles_y


def _monomials(dev: torch.device) -> Tensor:
    """``[6, TILE*TILE]`` monomials ``(x^2, xy, y^2, x, y, 1)`` of the pixel centres of a tile (tile-local)."""
    py, px = torch.meshgrid(torch.arange(TILE, device=dev), torch.arange(TILE, device=dev), indexing="ij")
    x, y = px.reshape(-1).float() + 0.5, py.reshape(-1).float() + 0.5
    return torch.stack([x * x, x * y, y * y, x, y, torch.ones_like(x)])


def rasterize_torch(proj: Projected, opacities: Tensor, colors: Tensor, width: int, height: int,
                    background: Tensor | None = None, budget: int = 1 << 20,
                    block: int = 64) -> tuple[Tensor, Tensor]:
    """Composite projected Gaussians: ``[H, W, K]`` colours and ``[H, W, 1]`` alpha.

    The exponent ``power - ln(opacity)`` of every (Gaussian, pixel) pair is a
    quadratic polynomial in the tile-local pixel coordinates, so one matrix
    product with the tile's monomials gives all of them; compositing weights are
    differences of the running transmittance (``w_i = T_{i-1} - T_i``).

    Args:
        proj: output of :func:`project`.
        opacities: ``[N]`` in (0, 1).
        colors: ``[N, K]`` any number of channels (RGB, features, depth...).
        background: ``[K]`` composited behind (optional).
        budget: max elements of one ``[tiles, gaussians, pixels]`` block (memory bound).
        block: max Gaussians per tile processed at once (longer tiles carry transmittance).
    """
    K = colors.shape[-1]
    dev = colors.device
    P = TILE * TILE
    tile, gid, tiles_x, tiles_y = _tile_pairs(proj, width, height)
    n_tiles = tiles_x * tiles_y
    counts = torch.bincount(tile, minlength=n_tiles)
    starts = torch.cumsum(counts, 0) - counts
    mono = _monomials(dev).to(colors.dtype)
    tile_xy = torch.stack([torch.arange(n_tiles, device=dev) % tiles_x,
                           torch.arange(n_tiles, device=dev) // tiles_x], -1).float() * TILE
    # per-Gaussian quadratic coefficients, completed per tile below (they depend on the tile origin)
    # what each (tile, Gaussian) pair reads, packed so a block needs one gather: mean x, y, conic a, b, c, ln o
    packed = torch.cat([proj.means2d, proj.conics, torch.log(opacities.clamp_min(1e-12))[:, None]], dim=-1)
    # row N is a padding Gaussian with ln o = -1e4 (alpha exactly 0), so padded slots need no mask
    pad = colors.shape[0]
    packed = torch.cat([packed, packed.new_tensor([[0.0, 0.0, 0.0, 0.0, 0.0, -1e4]])])
    colors_padded = torch.cat([colors, colors.new_zeros(1, K)])
    active = (counts > 0).nonzero()[:, 0]
    active = active[torch.argsort(counts[active])]  # similar lengths share a chunk
    rows_out, rows_alpha, rows_ids = [], [], []
    i = 0
    while i < len(active):
        length = int(counts[active[i]])
        n = max(1, min(len(active) - i, budget // (min(length, block) * P)))
        chunk = active[i:i + n]  # padded to its longest tile
        L = int(counts[chunk].max())
        rank = torch.arange(L, device=dev)
        valid = rank[None, :] < counts[chunk][:, None]  # [n, L]
        idx = gid[(starts[chunk][:, None] + rank[None, :]).clamp(max=max(0, gid.shape[0] - 1))]
        idx = torch.where(valid, idx, torch.full_like(idx, pad))
        origin = tile_xy[chunk]  # [n, 2]
        T = colors.new_ones(len(chunk), P)
        done = torch.zeros(len(chunk), P, dtype=torch.bool, device=dev)
        tile_len = counts[chunk]
        live = torch.arange(len(chunk), device=dev)
        parts, part_rows = [], []
        for s in range(0, L, block):
            if s > 0:  # drop tiles whose pixels are all finished or whose Gaussians are used up
                live = live[(tile_len[live] > s) & ~done[live].all(dim=1)]
                if live.numel() == 0:
                    break
            g = idx[live, s:s + block]
            q = packed[g]  # [n, l, 6]
            o = origin[live][:, None, :]
            mx, my = q[..., 0] - o[..., 0], q[..., 1] - o[..., 1]  # tile-local means [n, l]
            ga, gb, gc = q[..., 2], q[..., 3], q[..., 4]
            coeff = torch.stack([0.5 * ga, gb, 0.5 * gc, -(ga * mx + gb * my), -(gb * mx + gc * my),
                                 0.5 * ga * mx * mx + gb * mx * my + 0.5 * gc * my * my - q[..., 5]], -1)
            alpha = torch.exp(-(coeff @ mono)).clamp(max=ALPHA_MAX)  # [n, l, P]
            alpha = torch.where(alpha >= ALPHA_MIN, alpha, 0.0)
            T_live, done_live = T[live], done[live]
            T_start = torch.where(done_live, 0.0, T_live)  # finished pixels take nothing more
            T_after = T_start[:, None, :] * torch.cumprod(1.0 - alpha, dim=1)
            # a pixel stops before the Gaussian that would bring its transmittance to T_MIN; T_after never
            # increases along the depth axis, so the kept Gaussians are a prefix
            keep = T_after > T_MIN
            T_prev = torch.cat([T_start[:, None, :], T_after[:, :-1]], dim=1)
            w = torch.where(keep, T_prev - T_after, 0.0)  # w_i = T_{i-1} alpha_i
            parts.append(torch.bmm(colors_padded[g].transpose(1, 2), w))  # [n, K, P]: w stays contiguous
            part_rows.append(live)
            n_keep = keep.sum(dim=1)  # transmittance after the last kept Gaussian
            last = T_after.gather(1, (n_keep - 1).clamp_min(0)[:, None, :])[:, 0]
            T_new = torch.where(n_keep > 0, last, T_start)
            T = T.index_copy(0, live, torch.where(done_live, T_live, T_new))
            done = done.index_copy(0, live, done_live | (T_after[:, -1] <= T_MIN))
        acc = colors.new_zeros(len(chunk), K, P).index_add(0, torch.cat(part_rows), torch.cat(parts)).transpose(1, 2)
        rows_out.append(acc)
        rows_alpha.append(1.0 - T)
        rows_ids.append(chunk)
        i += n
    out = colors.new_zeros(n_tiles, P, K)
    alpha_out = colors.new_zeros(n_tiles, P)
    if rows_ids:
        ids = torch.cat(rows_ids)
        out = out.index_copy(0, ids, torch.cat(rows_out))
        alpha_out = alpha_out.index_copy(0, ids, torch.cat(rows_alpha))
    if background is not None:
        out = out + (1.0 - alpha_out)[..., None] * background
    img = out.view(tiles_y, tiles_x, TILE, TILE, K).permute(0, 2, 1, 3, 4).reshape(tiles_y * TILE, tiles_x * TILE, K)
    alpha_img = alpha_out.view(tiles_y, tiles_x, TILE, TILE).permute(0, 2, 1, 3).reshape(tiles_y * TILE,
                                                                                          tiles_x * TILE)
    return img[:height, :width], alpha_img[:height, :width, None]


def rasterize(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor, viewmat: Tensor,
              K: Tensor, width: int, height: int, background: Tensor | None = None, near_plane: float = 0.01,
              use_cuda: bool | None = None) -> tuple[Tensor, Tensor, dict]:
    """Render one camera: ``[H, W, K]`` colours, ``[H, W, 1]`` alpha, and gsplat-style ``info``.

    ``info`` has ``means2d`` ``[1, N, 2]`` (retain its grad for densification), ``radii``
    ``[1, N, 2]``, ``width``, ``height``, ``n_cameras`` and ``gaussian_ids`` (None),
    the fields gsplat's strategies read. CUDA tensors go through ``gsplat.rasterization``.
    """
    if use_cuda is None:
        use_cuda = means.is_cuda
    if use_cuda:
        import gsplat

        bg = background[None] if background is not None else None
        img, alpha, info = gsplat.rasterization(means, quats, scales, opacities, colors, viewmat[None], K[None],
                                                width, height, near_plane=near_plane, packed=False, backgrounds=bg)
        return img[0], alpha[0], info
    proj = project(means, quats, scales, opacities, viewmat, K, width, height, near_plane)
    means2d = proj.means2d[None]
    proj.means2d = means2d[0]
    # a block element carries ~10 float temporaries plus its share of the channels
    budget = fit_chunk(1 << 20, bytes_per_item=4 * (10 + colors.shape[-1] // 8), minimum=TILE * TILE * 8)
    img, alpha = rasterize_torch(proj, opacities, colors, width, height, background, budget=budget)
    info = {"means2d": means2d, "radii": proj.radii[None], "width": width, "height": height, "n_cameras": 1,
            "gaussian_ids": None, "depths": proj.depths[None]}
    return img, alpha, info
