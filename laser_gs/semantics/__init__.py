"""The Laser modules shared by every backend (paper sections 3.1 to 3.4).

They know nothing about TensoRF or Gaussians: they take tensors of features,
rays or points and return tensors and losses.
"""

from laser_gs.semantics.adapter import Adapter, self_cross_loss
from laser_gs.semantics.attention import TransientQueryAttention, vanilla_attention
from laser_gs.semantics.label import LabelField, class_probabilities, label_ce_loss, label_pseudo_targets
from laser_gs.semantics.losses import (
    augment_prompts,
    distillation_loss,
    minmax_per_view,
    segmentation_logits,
    text_aug_loss,
    text_aug_targets,
)

__all__ = [
    "Adapter", "LabelField", "TransientQueryAttention", "augment_prompts", "class_probabilities",
    "distillation_loss", "label_ce_loss", "label_pseudo_targets", "minmax_per_view", "segmentation_logits",
    "self_cross_loss", "text_aug_loss", "text_aug_targets", "vanilla_attention",
]
