"""Label volume head and its cross-entropy (paper section 3.3, Eq. 17-20).

Each 3D point carries a small label code; codes are alpha-composited like
colour, then a bias-free linear map lifts the composited code to a D-dim label
vector, softmaxed per ray (Eq. 17). Because the map is linear and bias-free,
``sum_i w_i M c_i = M sum_i w_i c_i``: compositing the code and projecting
once per ray is exact, so the label branch costs ``code_dim`` channels.

The pseudo-label is the label vector's cosine with the class text features
(Eq. 18), turned into a distribution over classes with a softmax at
temperature ``tau_label`` (a raw cosine vector is not a distribution: used as
CE weights it lets the loss fall by pushing every cosine negative). It stays
learnable, as the paper says, so the label field is pulled towards the class
that the CLIP and rendered logits agree on, and they are pulled towards it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LabelField(nn.Module):
    """Maps composited label codes ``[R, code_dim]`` to label distributions ``[R, dim]``.

    Args:
        code_dim: per-point label code width (what backends store and composite).
        dim: label vector width; the CLIP width so it can be compared with text.
    """

    def __init__(self, code_dim: int = 16, dim: int = 512):
        super().__init__()
        self.code_dim = code_dim
        self.lift = nn.Linear(code_dim, dim, bias=False)

    def forward(self, code: Tensor) -> Tensor:
        """``L(r) = softmax(M code)`` over the ``dim`` axis (Eq. 17)."""
        return torch.softmax(self.lift(code), dim=-1)


def label_pseudo_targets(label: Tensor, text: Tensor, tau: float = 0.1) -> Tensor:
    """``[R, C]`` soft pseudo-labels ``softmax_C(cos(L(r), T) / tau)`` (Eq. 18 made a distribution)."""
    cos = F.normalize(label, dim=-1) @ F.normalize(text, dim=-1).T
    return torch.softmax(cos / tau, dim=-1)


def class_probabilities(cos: Tensor, tau: float = 0.2) -> Tensor:
    """Segmentation probabilities ``softmax_C(z / tau)`` from cosine logits ``z`` ``[..., C]``."""
    return torch.softmax(cos / tau, dim=-1)


def label_ce_loss(label: Tensor, clip_cos: Tensor, render_cos: Tensor, text: Tensor, gamma: float = 0.5,
                  tau: float = 0.2, tau_label: float = 0.1) -> Tensor:
    """Label-volume cross-entropy (Eq. 18-20) with the class axis last, in a form that cannot collapse.

    Two terms, mean over rays:

    * the label volume learns the ensemble of the CLIP and rendered class probabilities,
      ``-sum_c sg(gamma z_I + (1 - gamma) z)_c log p_c`` (Eq. 20's ensemble as the target);
    * the rendered logits learn the label volume's 3D-fused labels, ``-sum_c sg(p)_c log z_c``.

    ``p = softmax_C(cos(L(r), T) / tau_label)`` are the pseudo-labels of Eq. 18 and ``z_I``,
    ``z`` the class probabilities of the (adapted) CLIP and rendered features. Eq. 20 as written
    lets ``p`` and ``z`` agree on any single class and drive the loss down together (we measured
    every pixel collapsing to one class); stopping the gradient of each term's target keeps CLIP
    as the anchor, see docs/method.md.

    Args:
        label: ``[R, D]`` rendered label distributions (from :class:`LabelField`).
        clip_cos: ``[R, C]`` cosine logits of the (adapted) CLIP features, Eq. 5.
        render_cos: ``[R, C]`` cosine logits of the rendered features, Eq. 4.
        text: ``[C, D]`` class text features.
        gamma: ensemble weight of Eq. 20.
        tau: temperature of the segmentation softmax (0.2 in the reference code).
        tau_label: temperature of the pseudo-label softmax.
    """
    cos_l = F.normalize(label, dim=-1) @ F.normalize(text, dim=-1).T
    log_p = F.log_softmax(cos_l / tau_label, dim=-1)
    z_i = torch.softmax(clip_cos.detach() / tau, dim=-1)
    log_z = F.log_softmax(render_cos / tau, dim=-1)
    target = gamma * z_i + (1.0 - gamma) * log_z.detach().exp()
    fuse = -(target * log_p).sum(dim=-1).mean()
    feed_back = -(log_p.detach().exp() * log_z).sum(dim=-1).mean()
    return fuse + feed_back
