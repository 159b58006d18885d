"""What the shared :class:`~laser_gs.semantics.field.SemanticField` reads at the Gaussians: a box around their
centres (positions normalised into it) and their appearance.

Geometry is frozen in stage 2, so the field is evaluated once per step at the
``N`` centres (``[N, 3]`` -> ``[N, point_dim]``, ``[N, code_dim]``), and not at all
when rendering a trained model (the outputs are cached by the backend).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from laser_gs.backends.gsplat.render import base_colour
from laser_gs.semantics.field import SemanticField
from laser_gs.semantics.volume import resolution_for

if TYPE_CHECKING:
    from laser_gs.backends.gsplat.config import GsplatSettings
    from laser_gs.data.unbounded import Contraction
    from laser_gs.training.semantic import SemanticSettings


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
    return torch.cat([base_colour(sh0), shN.flatten(1)], dim=-1).detach()


def normalise(means: Tensor, box: Tensor) -> Tensor:
    """World ``[N, 3]`` -> ``[-1, 1]^3`` of ``box`` ``[2, 3]`` (clamped: points outside read its border cells)."""
    lo, hi = box[0], box[1]
    return ((means - lo) / (hi - lo) * 2.0 - 1.0).clamp(-1.0, 1.0)


def new_field(params: nn.ParameterDict, cfg: GsplatSettings, sem: SemanticSettings,
              contraction: Contraction | None) -> tuple[SemanticField, Tensor]:
    """The stage 2 field over the final Gaussians and its ``[2, 3]`` box: around the centres, or the contracted
    ball's ``[-2, 2]^3`` for unbounded scenes. Draws its initial values from torch's generator (seed it first)."""
    means = params["means"].detach()
    box = field_box(means) if contraction is None else torch.tensor([[-2.0] * 3, [2.0] * 3], device=means.device)
    field = SemanticField(resolution_for(box, cfg.semantic_voxels),
                          gaussian_appearance(params["sh0"], params["shN"]).shape[1], sem.point_dim, sem.code_dim,
                          cfg.semantic_comps, cfg.label_comps, cfg.field_width)
    return field.to(means.device), box


def field_inputs(field: SemanticField, box: Tensor, params: nn.ParameterDict, contraction: Contraction | None,
                 appearance_scale: float, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The field's ``[N, point_dim]`` features and ``[N, code_dim]`` label codes at the Gaussians (or at those of
    ``idx``): their (contracted) centres normalised into ``box`` and their appearance times ``appearance_scale``."""
    means, app = params["means"].detach(), gaussian_appearance(params["sh0"], params["shN"])
    if idx is not None:
        means, app = means[idx], app[idx]
    if appearance_scale != 1.0:
        app = app * appearance_scale
    if contraction is not None:
        means = contraction.contract(means)
    return field(normalise(means, box), app)


def field_state(field: SemanticField | None, box: Tensor | None) -> dict | None:
    """The field as saved in a checkpoint (CPU tensors), or None before stage 2."""
    if field is None:
        return None
    return {"meta": field.meta(), "box": box.cpu(), "state": {k: v.cpu() for k, v in field.state_dict().items()}}


def load_field(state: dict | None, device: torch.device | str) -> tuple[SemanticField | None, Tensor | None]:
    """``(field, box)`` from :func:`field_state`'s output, on ``device``; ``(None, None)`` for None."""
    if not state:
        return None, None
    field = SemanticField.from_meta(state["meta"])
    field.load_state_dict(state["state"])
    return field.to(device), state["box"].to(device)
