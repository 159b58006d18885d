"""SSIM with an 11x11 Gaussian window (sigma 1.5), the photometric term of 3DGS (L1 + D-SSIM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _window(size: int = 11, sigma: float = 1.5, device=None, dtype=None) -> Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


def ssim(a: Tensor, b: Tensor, size: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of two ``[H, W, C]`` images in [0, 1] (separable Gaussian filtering, zero padding)."""
    x = a.permute(2, 0, 1)[None]
    y = b.permute(2, 0, 1)[None]
    C = x.shape[1]
    g = _window(size, sigma, x.device, x.dtype)
    kh = g.view(1, 1, 1, size).expand(C, 1, 1, size)
    kv = g.view(1, 1, size, 1).expand(C, 1, size, 1)

    def blur(t: Tensor) -> Tensor:
        t = F.conv2d(t, kh, padding=(0, size // 2), groups=C)
        return F.conv2d(t, kv, padding=(size // 2, 0), groups=C)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x ** 2
    syy = blur(y * y) - mu_y ** 2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2)
    return (num / den).mean()
