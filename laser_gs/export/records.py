"""What a backend hands to export, query and viewers: plain arrays of points, with Gaussian attributes if any.

Nothing here knows a backend: a backend fills a :class:`PointSet`, and the PLY
writers, ``laser query`` and the viewer read it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import Tensor


@dataclass
class GaussianAttributes:
    """3DGS parameters of ``P`` Gaussians in the Inria PLY conventions.

    ``scales`` ``[P, 3]`` (log), ``quats`` ``[P, 4]`` (w x y z, not necessarily unit),
    ``opacities`` ``[P]`` (logit), ``sh0`` ``[P, 1, 3]`` and ``shN`` ``[P, K-1, 3]`` (SH coefficients).
    """

    scales: Tensor
    quats: Tensor
    opacities: Tensor
    sh0: Tensor
    shN: Tensor


@dataclass
class PointSet:
    """``P`` points of a scene: ``xyz`` and ``rgb`` ``[P, 3]``; with semantics ``feature`` and ``label`` ``[P, D]``
    (the decoded CLIP-space feature and the label-volume distribution); ``gaussians`` for splat backends."""

    xyz: Tensor
    rgb: Tensor
    feature: Tensor | None = None
    label: Tensor | None = None
    gaussians: GaussianAttributes | None = None

    def __post_init__(self) -> None:
        P = self.xyz.shape[0]
        assert self.xyz.shape == (P, 3) and self.rgb.shape == (P, 3), (self.xyz.shape, self.rgb.shape)
        for t in (self.feature, self.label):
            assert t is None or (t.ndim == 2 and t.shape[0] == P), t.shape
        if self.gaussians is not None:
            assert all(getattr(self.gaussians, f.name).shape[0] == P for f in fields(self.gaussians))

    def __len__(self) -> int:
        return self.xyz.shape[0]

    def select(self, keep: Tensor) -> "PointSet":
        """The points where ``keep`` ``[P]`` (bool) is true."""
        pick = (lambda t: t[keep] if t is not None else None)  # noqa: E731
        gauss = self.gaussians
        if gauss is not None:
            gauss = GaussianAttributes(**{f.name: getattr(gauss, f.name)[keep] for f in fields(gauss)})
        return PointSet(self.xyz[keep], self.rgb[keep], pick(self.feature), pick(self.label), gauss)
