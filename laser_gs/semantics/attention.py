"""Low-rank transient query attention (paper section 3.2, Eq. 12-16).

Vanilla self-attention over S points costs O(S^2 D). Here ``s`` learned
"transient" queries ``T`` (``[s, E]``) stand between the points:

* point -> query weights ``A1 = softmax_s(Q T^T / sqrt(E))``       ``[S, s]``
* query -> point weights ``A2 = softmax_S(T K^T / sqrt(E) + log w)``  ``[s, S]``
* output ``h = A1 (A2 V) + Q``                                       ``[S, E]``

so time and memory are O(S s E) and nothing S x S exists. ``h`` lives in the
E-dimensional attention space; :meth:`TransientQueryAttention.decode` is a
bias-free linear map to the output width, so it commutes with alpha
compositing: render E channels, decode once per pixel.

What a "batch of points" is. ``A2`` pools over a set of points, so outputs
depend on which points form the set. Here the set is exactly the points of one
call (one training batch of rays, one rendered image, or all Gaussians), with
optional per-point weights (rendering weights; weight 0 excludes a point).
:meth:`summarize` streams over chunks with a running log-sum-exp, so chunking
only bounds memory and never changes results (the reference code pools per
render chunk, so its outputs change with the chunk size).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TransientQueryAttention(nn.Module):
    """Point-set attention through ``num_queries`` learned queries.

    Args:
        in_dim: width of the input point features.
        embed_dim: attention width E (reference code: 48 or 64; paper: 32).
        num_queries: number of transient queries s (reference code: 3E).
        out_dim: width after :meth:`decode` (the CLIP width, 512).
    """

    def __init__(self, in_dim: int, embed_dim: int = 48, num_queries: int | None = None, out_dim: int = 512):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_queries = num_queries or 3 * embed_dim
        self.query = nn.Linear(in_dim, embed_dim, bias=False)
        self.key = nn.Linear(in_dim, embed_dim, bias=False)
        self.value = nn.Linear(in_dim, embed_dim, bias=False)
        self.transient = nn.Parameter(torch.empty(self.num_queries, embed_dim))
        nn.init.trunc_normal_(self.transient, std=0.02)
        self.unzip = nn.Linear(embed_dim, out_dim, bias=False)
        self.scale = 1.0 / math.sqrt(embed_dim)

    def summarize(self, x: Tensor, weight: Tensor | None = None, chunk: int = 65536) -> Tensor:
        """Pool the point set into one value per transient query.

        Args:
            x: ``[S, in_dim]`` point features.
            weight: optional ``[S]`` non-negative point weights (0 = excluded).
            chunk: points per step (memory bound only; results do not depend on it).

        Returns:
            ``[s, E]``: ``A2 V``, the softmax over points of each query's scores applied to V.
            Zeros when every weight is 0.
        """
        s, E = self.num_queries, self.embed_dim
        running_max = x.new_full((s,), -math.inf)
        denom = x.new_zeros(s)
        acc = x.new_zeros(s, E)
        for start in range(0, x.shape[0], chunk):
            xc = x[start:start + chunk]
            logits = (self.key(xc) @ self.transient.T) * self.scale  # [c, s]
            if weight is not None:
                logits = logits + torch.log(weight[start:start + chunk].clamp_min(0))[:, None]
            new_max = torch.maximum(running_max, logits.max(dim=0).values)
            safe_max = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))
            e = torch.exp(logits - safe_max)  # [c, s]; exp(-inf) = 0 for excluded points
            correction = torch.exp(running_max - safe_max)
            denom = denom * correction + e.sum(dim=0)
            acc = acc * correction[:, None] + e.T @ self.value(xc)
            running_max = new_max
        return acc / denom.clamp_min(1e-30)[:, None]

    def mix(self, x: Tensor, summary: Tensor, chunk: int = 65536) -> Tensor:
        """``[S, E]`` attended features ``A1 summary + Q`` (per point; chunks are independent)."""
        out = []
        for start in range(0, x.shape[0], chunk):
            q = self.query(x[start:start + chunk])
            a1 = torch.softmax((q @ self.transient.T) * self.scale, dim=-1)  # [c, s]
            out.append(a1 @ summary + q)
        return torch.cat(out) if out else x.new_zeros(0, self.embed_dim)

    def decode(self, h: Tensor) -> Tensor:
        """Linear (bias-free) map ``[..., E] -> [..., out_dim]``; commutes with compositing."""
        return self.unzip(h)

    def forward(self, x: Tensor, weight: Tensor | None = None, chunk: int = 65536, decode: bool = True) -> Tensor:
        """Attend over the point set ``x`` ``[S, in_dim]``; ``[S, out_dim]`` (or ``[S, E]`` undecoded)."""
        h = self.mix(x, self.summarize(x, weight, chunk), chunk)
        return self.decode(h) if decode else h


def vanilla_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Reference O(S^2) softmax attention ``softmax(q k^T / sqrt(E)) v`` (tests and benchmarks only)."""
    return torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1) @ v
