"""What the shared :class:`~laser_gs.semantics.field.SemanticField` reads at the Gaussians: a box around their
centres (positions normalised into it) and their appearance.

Geometry is frozen in stage 2, so the field is evaluated once per step at the
``N`` centres (``[N, 3]`` -> ``[N, point_dim]``, ``[N, code_dim]``), and not at all
when rendering a trained model (the outputs are cached by the backend).
"""

from __future__ import annotations

import torch
from torch import Tensor

from laser_gs.spherical_harmonics import SH_C0


def field_box(means: Tensor, quantile: float = 0.01, margin: float = 0.05) -> Tensor:
    """``[2, 3]`` box holding the Gaussians' centres ``[N, 3]``: per-axis quantiles, widened by ``margin``.

    Quantiles, not min/max: a few far-away Gaussians (background, floaters) would
    otherwise stretch the grid and leave few cells on the objects; those beyond the
    box read the border cells.
    """
    q = torch.tensor([quantile, 1.0 - quantile], dtype=means.dtype, device=means.device)
    lo, hi = torch.quantile(means.detach().float(), q, dim=0).to(means.dtype)
    pad = (hi - lo).clamp_min(1e-6) * margin
    return torch.stack([lo - pad, hi + pad])


def gaussian_appearance(sh0: Tensor, shN: Tensor) -> Tensor:
    """``[N, 3 + 3 (K-1)]`` appearance of Gaussians: base colour and the view-dependent SH coefficients.

    Detached: the semantic losses shape the field, not the colours.
    """
    return torch.cat([SH_C0 * sh0[:, 0] + 0.5, shN.flatten(1)], dim=-1).detach()


def normalise(means: Tensor, box: Tensor) -> Tensor:
    """World ``[N, 3]`` -> ``[-1, 1]^3`` of ``box`` ``[2, 3]`` (clamped: points outside read its border cells)."""
    lo, hi = box[0], box[1]
    return ((means - lo) / (hi - lo) * 2.0 - 1.0).clamp(-1.0, 1.0)
