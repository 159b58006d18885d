"""Selecting the 3D points (Gaussians, surface points) that match one text prompt (``laser query``).

Relevancy follows LERF: for each negative phrase ``n`` the pairwise softmax
``exp(c_q / tau) / (exp(c_q / tau) + exp(c_n / tau))`` of the cosine similarities to
the query and to the negative, and the minimum over the negatives. A point is
selected when its relevancy reaches the threshold; at 0.5 that means "closer to
the query than to every negative". The negatives are the run's other classes
(no CLIP needed) or LERF's canonical phrases (encoded with the run's CLIP).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from laser_gs.backends.protocol import Backend
from laser_gs.choices import CANONICAL_NEGATIVES
from laser_gs.data.scene import Scene
from laser_gs.errors import LaserError
from laser_gs.export.records import PointSet
from laser_gs.prompts import prompt_embeddings
from laser_gs.run import RunConfig
from laser_gs.semantics.calibration import add_offsets
from laser_gs.semantics.losses import segmentation_logits



def pairwise_relevancy(cos_query: Tensor, cos_negatives: Tensor, tau: float = 0.2) -> Tensor:
    """``[P]`` min over negatives of ``sigmoid((c_q - c_n) / tau)`` (the two-way softmax).

    Args:
        cos_query: ``[P]`` cosine of each point to the query.
        cos_negatives: ``[P, M]`` cosine of each point to the ``M`` negatives.
    """
    return torch.sigmoid((cos_query[:, None] - cos_negatives) / tau).amin(dim=1)


def relevancy(points: dict[str, Tensor], query: Tensor, negatives: Tensor, head: str = "feature",
              tau: float = 0.2, chunk: int = 65536, offsets: Tensor | None = None) -> Tensor:
    """``[P]`` relevancy of points to ``query`` ``[D]`` against ``negatives`` ``[M, D]``.

    ``points`` holds ``feature`` and/or ``label`` ``[P, D]``; ``head`` picks the rendered feature,
    the label volume or their mean (``ensemble``), as in evaluation. Chunked over points. ``offsets``
    ``[1 + M]``: the run's class calibration of the query and negatives, added to the feature head's cosines.
    """
    text = torch.cat([query[None], negatives]).to(next(iter(points.values())).dtype)
    keys = {"feature": ("feature",), "label": ("label",), "ensemble": ("feature", "label")}[head]
    n = points[keys[0]].shape[0]
    out = torch.empty(n)
    for s in range(0, n, chunk):
        rel = [pairwise_relevancy(*_split(add_offsets(segmentation_logits(points[k][s:s + chunk], text),
                                                      offsets if k == "feature" else None)), tau) for k in keys]
        out[s:s + chunk] = torch.stack(rel).mean(0).cpu()
    return out


def _split(cos: Tensor) -> tuple[Tensor, Tensor]:
    return cos[:, 0], cos[:, 1:]


@dataclass
class QueryResult:
    """A prompt's relevancy over a run's points: ``relevancy`` and ``keep`` ``[P]``, with the prompt and negatives
    (``names``, ``embeddings`` ``[1 + M, D]``) the selection is exported with."""

    prompt: str
    points: PointSet
    relevancy: Tensor
    keep: Tensor
    names: list[str]
    embeddings: Tensor

    @property
    def selected(self) -> int:
        return int(self.keep.sum())


def query_run(backend: Backend, config: RunConfig, scene: Scene, prompt: str, threshold: float = 0.5,
              negatives: str = "classes", head: str = "feature") -> QueryResult:
    """Relevancy of every point of a trained run to ``prompt`` against the run's other classes or LERF's
    canonical phrases (``negatives``), and the points at or above ``threshold``."""
    prompt = prompt.strip()
    if not prompt:
        raise LaserError("the query text is empty; give a prompt such as \"red apple\"")
    if negatives == "classes":
        others = [c for c in backend.classes if c != prompt]
        if not others:
            raise LaserError("the run has no other classes to compare against; use --negatives canonical")
    else:
        others = list(CANONICAL_NEGATIVES)
    names, embeddings = prompt_embeddings(backend, config, [prompt] + others)
    points = backend.points(scene.cameras, scene.train_views)
    # the class calibration compares the run's classes with each other, not with canonical phrases
    offsets = backend.class_offsets(embeddings.cpu()) if negatives == "classes" else None
    rel = relevancy({k: v for k, v in (("feature", points.feature), ("label", points.label)) if v is not None},
                    embeddings[0].cpu(), embeddings[1:].cpu(), head, offsets=offsets)
    return QueryResult(prompt, points, rel, rel >= threshold, names, embeddings)
