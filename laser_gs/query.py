"""Selecting the 3D points (Gaussians, surface points) that match one text prompt (``laser query``).

Relevancy follows LERF: for each negative phrase ``n`` the pairwise softmax
``exp(c_q / tau) / (exp(c_q / tau) + exp(c_n / tau))`` of the cosine similarities to
the query and to the negative, and the minimum over the negatives. A point is
selected when its relevancy reaches the threshold; at 0.5 that means "closer to
the query than to every negative". The negatives are the run's other classes
(no CLIP needed) or LERF's canonical phrases (encoded with the run's CLIP).
"""

from __future__ import annotations

import torch
from torch import Tensor

from laser_gs.semantics.losses import segmentation_logits

CANONICAL_NEGATIVES = ("object", "things", "stuff", "texture")


def pairwise_relevancy(cos_query: Tensor, cos_negatives: Tensor, tau: float = 0.2) -> Tensor:
    """``[P]`` min over negatives of ``sigmoid((c_q - c_n) / tau)`` (the two-way softmax).

    Args:
        cos_query: ``[P]`` cosine of each point to the query.
        cos_negatives: ``[P, M]`` cosine of each point to the ``M`` negatives.
    """
    return torch.sigmoid((cos_query[:, None] - cos_negatives) / tau).amin(dim=1)


def relevancy(points: dict[str, Tensor], query: Tensor, negatives: Tensor, head: str = "feature",
              tau: float = 0.2, chunk: int = 65536) -> Tensor:
    """``[P]`` relevancy of points to ``query`` ``[D]`` against ``negatives`` ``[M, D]``.

    ``points`` holds ``feature`` and/or ``label`` ``[P, D]``; ``head`` picks the rendered feature,
    the label volume or their mean (``ensemble``), as in evaluation. Chunked over points.
    """
    text = torch.cat([query[None], negatives]).to(next(iter(points.values())).dtype)
    keys = {"feature": ("feature",), "label": ("label",), "ensemble": ("feature", "label")}[head]
    n = points[keys[0]].shape[0]
    out = torch.empty(n)
    for s in range(0, n, chunk):
        rel = [pairwise_relevancy(*_split(segmentation_logits(points[k][s:s + chunk], text)), tau) for k in keys]
        out[s:s + chunk] = torch.stack(rel).mean(0).cpu()
    return out


def _split(cos: Tensor) -> tuple[Tensor, Tensor]:
    return cos[:, 0], cos[:, 1:]
