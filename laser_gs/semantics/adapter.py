"""Adapter and self-cross-training (paper section 3.1, Eq. 6-9).

The adapter denoises dense CLIP features after CLIP (CLIP itself stays frozen)
and is shared with the rendered-feature branch:

    u   = attention(x)                        token mixing, O(N s E), see attention.py
    f   = bottleneck(u) + u                   D -> D/2 -> D with ReLU inside
    out = alpha * f + (1 - alpha) * x         Eq. 8, alpha = 0.2

Deviations from the reference code (docs/method.md): its N x N attention with
a sinusoidal position code over the flattened batch index (capped at 8192
tokens, O(N^2) memory) is replaced by transient query attention over the
tokens of the call, and its stateful scalar EMA centring (updated even in
evaluation) and the ReLU on the bottleneck output are dropped.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from laser_gs.semantics.attention import TransientQueryAttention


class Adapter(nn.Module):
    """Residual denoising adapter on ``[N, D]`` features.

    Args:
        dim: feature width D (512 for CLIP ViT-B/16).
        reduction: bottleneck width is ``dim // reduction`` (512 -> 256 -> 512).
        alpha: residual ratio of Eq. 8.
        attn_dim: width of the token-mixing attention (32 in the reference code).
    """

    def __init__(self, dim: int = 512, reduction: int = 2, alpha: float = 0.2, attn_dim: int = 32):
        super().__init__()
        self.alpha = alpha
        self.attention = TransientQueryAttention(dim, embed_dim=attn_dim, out_dim=dim)
        self.bottleneck = nn.Sequential(nn.Linear(dim, dim // reduction), nn.ReLU(inplace=True),
                                        nn.Linear(dim // reduction, dim))
        # Start as the identity map up to scale (f = 0): the learned correction grows from zero instead
        # of mixing a random low-rank projection and a batch-pooled summary into every token.
        nn.init.zeros_(self.bottleneck[2].weight)
        nn.init.zeros_(self.bottleneck[2].bias)
        nn.init.zeros_(self.attention.unzip.weight)

    def forward(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """``[N, D] -> [N, D]``; tokens of one call attend to each other (optionally weighted)."""
        u = self.attention(x, weight)
        f = self.bottleneck(u) + u
        return self.alpha * f + (1.0 - self.alpha) * x


def _one_minus_cos(a: Tensor, b: Tensor) -> Tensor:
    return (1.0 - F.cosine_similarity(a, b, dim=-1)).mean()


def self_cross_loss(adapter: Adapter, clip: Tensor, rendered: Tensor | None = None, beta: float = 0.3,
                    cross: bool = True) -> Tensor:
    """Self-cross-training loss (Eq. 9), written as ``1 - cos`` so that it is >= 0.

    ``beta * [d(A(F), F) + d(A(F^), F^)] + (1 - beta) * [d(A(F^), F) + d(A(F), F^)]``
    with ``d = 1 - cos``, ``F`` the CLIP features and ``F^`` the rendered ones.
    Targets carry no gradient; predictions train the adapter (and, through
    ``A(F^)``, the field). Before cross-training starts (``cross=False`` or no
    rendered features) only the self term on CLIP, ``d(A(F), F)``, is used.

    Args:
        adapter: the shared adapter.
        clip: ``[N, D]`` CLIP features (no gradient expected).
        rendered: ``[N, D]`` rendered features of the same rays, or None.
        beta: self/cross balance (0.3 in the paper).
        cross: whether the cross terms are active (from ``sct_start`` on).
    """
    clip = clip.detach()
    a_clip = adapter(clip)
    if rendered is None or not cross:
        return _one_minus_cos(a_clip, clip)
    a_rend = adapter(rendered)
    target_rend = rendered.detach()
    self_terms = _one_minus_cos(a_clip, clip) + _one_minus_cos(a_rend, target_rend)
    cross_terms = _one_minus_cos(a_rend, clip) + _one_minus_cos(a_clip, target_rend)
    return beta * self_terms + (1.0 - beta) * cross_terms
