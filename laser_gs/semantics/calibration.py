"""Scene-level class calibration: a per-prompt logit offset so that every prompted class names something.

CLIP's text embeddings carry a prompt-specific bias: in a scene with two red objects, "red apple" may score
below "red book" on *both* objects, in every view. Multi-view fusion cannot fix such an error (it is the
same in all views); the distilled field reproduces it. But the fused field still separates the two objects
in feature space, and on the apple region the apple score is *relatively* higher than on the book region.

The calibration uses that, and one assumption of the segmentation protocols (3D-OVS, LERF-OVS) and of
users who list the objects of their scene: every prompted class is somewhere in the scene. It clusters the
run's rendered class scores over the training views (k-means, a few clusters per class); a class that wins
no cluster takes the one it is closest to winning (never the only cluster of another class), with the offset
that splits the rival's points where they are sparsest in ``s_c - s_rival`` (between the rival's bulk and that
cluster), so the whole confused object changes class. Classes that already win a cluster get no offset, so a
scene without such a confusion is left exactly as it was.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def kmeans(x: Tensor, k: int, iters: int = 25, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means with k-means++ seeding: ``[N, C]`` rows -> ``[k, C]`` centroids and ``[k]`` sizes."""
    assert x.ndim == 2 and x.shape[0] >= k >= 1, (tuple(x.shape), k)
    g = torch.Generator().manual_seed(seed)
    x = x.float().cpu()
    centroids = x[torch.randint(x.shape[0], (1,), generator=g)]
    d2 = ((x - centroids) ** 2).sum(-1)
    for _ in range(k - 1):  # k-means++: the next seed far from the chosen ones
        nxt = x[torch.multinomial(d2 / d2.sum() if d2.sum() > 0 else torch.ones_like(d2), 1, generator=g)]
        centroids = torch.cat([centroids, nxt])
        d2 = torch.minimum(d2, ((x - nxt) ** 2).sum(-1))
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).float()
        moved = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
        if torch.equal(moved, centroids):
            break
        centroids = moved
    assign = torch.cdist(x, centroids).argmin(dim=1)
    return centroids, torch.bincount(assign, minlength=k).float()


def valley_threshold(values: Tensor, lo: float, hi: float, bins: int = 32) -> float:
    """Where ``[N]`` values are sparsest between ``lo`` and ``hi`` (a histogram of ``bins`` bins, smoothed over
    three; the end bins excluded): the low-density boundary between two groups."""
    assert hi > lo, (lo, hi)
    h = torch.histc(values.float().clamp(lo, hi), bins, lo, hi)
    h = F.avg_pool1d(h[None, None], 3, stride=1, padding=1, count_include_pad=False)[0, 0]
    i = int(h[1:-1].argmin()) + 1
    return lo + (i + 0.5) * (hi - lo) / bins


def coverage_offsets(centroids: Tensor, sizes: Tensor, points: Tensor | None = None, min_share: float = 0.003
                     ) -> Tensor:
    """``[K, C]`` cluster scores and ``[K]`` sizes -> ``[C]`` non-negative offsets with which every class wins
    (is the argmax of) at least one cluster holding ``min_share`` of the points, where that is possible.

    Greedy: a class ``c`` that wins nothing takes the cluster it is closest to winning, only from a class ``c'``
    that keeps another cluster. Its offset is the smallest that wins that cluster, or, with ``points`` ``[N, C]``
    (the clustered scores), the larger one that puts the ``c``-versus-``c'`` boundary where the points ``c'``
    wins are sparsest in ``s_c - s_c'``, between their median and that cluster, so the whole confused object
    moves, not just the cluster at its edge. Classes that win a cluster already get 0.
    """
    K, C = centroids.shape
    assert sizes.shape == (K,), (tuple(sizes.shape), K)
    offsets = torch.zeros(C)
    valid = sizes / sizes.sum().clamp_min(1) >= min_share
    for _ in range(4 * C):
        cal = centroids + offsets
        win = cal.argmax(dim=1)
        counts = torch.bincount(win[valid], minlength=C)
        missing = (counts == 0).nonzero().flatten()
        if missing.numel() == 0:
            break
        c = int(missing[0])
        margin = cal.max(dim=1).values - cal[:, c]
        margin[~(valid & (counts[win] >= 2))] = float("inf")  # never take the only cluster of a class
        k = int(margin.argmin())
        if not torch.isfinite(margin[k]):
            break
        raise_by = float(margin[k]) + 1e-4
        if points is not None:
            rival = int(win[k])
            pts = points + offsets
            mine = pts.argmax(dim=1) == rival
            gap = pts[mine, c] - pts[mine, rival]
            lo, hi = float(gap.median()) if gap.numel() else 0.0, float(cal[k, c] - cal[k, rival])
            if gap.numel() >= 2 and hi > lo:
                raise_by = max(raise_by, -valley_threshold(gap, lo, hi))
        offsets[c] += raise_by
    return offsets


#: the calibration reads up to this many evenly spaced training views, every ``CALIBRATION_STRIDE``-th pixel
CALIBRATION_VIEWS = 8
CALIBRATION_STRIDE = 4


def calibration_views(views: list[int], max_views: int = CALIBRATION_VIEWS) -> list[int]:
    """Up to ``max_views`` evenly spaced entries of ``views`` (the training views the calibration renders)."""
    return views[:: max(1, -(-len(views) // max_views))]


def class_offsets(logits: Tensor, clusters_per_class: int = 4, max_points: int = 30000, seed: int = 0) -> Tensor:
    """``[N, C]`` cosine logits of pixels across the training views -> ``[C]`` per-class offsets."""
    assert logits.ndim == 2 and logits.shape[1] >= 2, tuple(logits.shape)
    x = logits.float().cpu()
    x = x - x.mean(dim=1, keepdim=True)  # only differences between classes decide the argmax
    if x.shape[0] > max_points:
        x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:max_points]]
    k = min(clusters_per_class * x.shape[1], x.shape[0])
    centroids, sizes = kmeans(x, k, seed=seed)
    return coverage_offsets(centroids, sizes, points=x)


class PromptOffsets:
    """Offsets keyed by the prompts' text embeddings: ``for_text`` finds each row's offset (0 if unknown).

    Keyed by embedding, not by name, because renders receive text tensors; a prompt embedded again by the
    same model finds its offset, any other prompt gets none.
    """

    MATCH = 0.9999  # cosine above which two text rows are the same prompt

    def __init__(self, keys: Tensor | None = None, values: Tensor | None = None):
        self.keys = F.normalize(keys.float().cpu(), dim=-1) if keys is not None else torch.zeros(0, 0)
        self.values = values.float().cpu() if values is not None else torch.zeros(0)
        assert self.keys.shape[0] == self.values.shape[0], (tuple(self.keys.shape), tuple(self.values.shape))

    def __bool__(self) -> bool:
        return bool((self.values != 0).any())

    def for_text(self, text: Tensor) -> Tensor:
        """``[C, D]`` text -> ``[C]`` offsets (on ``text``'s device)."""
        out = torch.zeros(text.shape[0])
        if self.values.numel() and self.keys.shape[1] == text.shape[1]:
            cos = F.normalize(text.detach().float().cpu(), dim=-1) @ self.keys.T  # [C, M]
            best, idx = cos.max(dim=1)
            out = torch.where(best > self.MATCH, self.values[idx], out)
        return out.to(text.device)

    def state(self) -> dict[str, Tensor]:
        return {"keys": self.keys, "values": self.values}

    @classmethod
    def from_state(cls, state: dict[str, Tensor] | None) -> "PromptOffsets":
        if not state or state["values"].numel() == 0:
            return cls()
        return cls(state["keys"], state["values"])


def add_offsets(logits: Tensor, offsets: Tensor | None) -> Tensor:
    """``[..., C]`` cosine logits plus the class calibration ``offsets`` ``[C]`` (None: unchanged)."""
    return logits + offsets.to(logits) if offsets is not None else logits
