"""Real spherical harmonics up to degree 3 in the 3DGS / gsplat convention (colours of Gaussians)."""

from __future__ import annotations

import torch
from torch import Tensor

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
         1.445305721320277, -0.5900435899266435)


def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """Real SH basis ``[N, (degree+1)^2]`` of unit directions ``[N, 3]`` (the 3DGS / gsplat convention)."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2 * zz - xx - yy), SH_C2[3] * x * z,
                SH_C2[4] * (xx - yy)]
    if degree >= 3:
        out += [SH_C3[0] * y * (3 * xx - yy), SH_C3[1] * x * y * z, SH_C3[2] * y * (4 * zz - xx - yy),
                SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy), SH_C3[4] * x * (4 * zz - xx - yy),
                SH_C3[5] * z * (xx - yy), SH_C3[6] * x * (xx - 3 * yy)]
    return torch.stack(out, dim=-1)


def sh_to_rgb(sh0: Tensor, shN: Tensor, dirs: Tensor, degree: int) -> Tensor:
    """``[N, 3]`` colours from SH coefficients (``sh0`` ``[N, 1, 3]``, ``shN`` ``[N, K-1, 3]``) seen along ``dirs``."""
    coeffs = torch.cat([sh0, shN], dim=1)[:, : (degree + 1) ** 2]
    basis = sh_basis(dirs, degree)  # [N, k]
    return (torch.einsum("nk,nkc->nc", basis, coeffs) + 0.5).clamp_min(0.0)


