"""Shared Laser modules: maths on small hand-made inputs, and where gradients flow."""

import math

import pytest
import torch

from laser_gs.semantics import (
    Adapter,
    LabelField,
    TransientQueryAttention,
    augment_prompts,
    distillation_loss,
    label_ce_loss,
    label_pseudo_targets,
    minmax_per_view,
    segmentation_logits,
    self_cross_loss,
    text_aug_loss,
    text_aug_targets,
)

torch.manual_seed(0)


@pytest.fixture
def tqa():
    torch.manual_seed(0)
    m = TransientQueryAttention(in_dim=6, embed_dim=4, num_queries=5, out_dim=8)
    with torch.no_grad():
        m.transient.normal_(0, 1.0)  # non-trivial attention (init is near-uniform)
    return m


def test_tqa_matches_explicit_formula(tqa):
    x = torch.randn(11, 6)
    Q, K, V, T = tqa.query(x), tqa.key(x), tqa.value(x), tqa.transient
    a1 = torch.softmax(Q @ T.T / 2.0, dim=1)       # [S, s], softmax over queries
    a2 = torch.softmax(T @ K.T / 2.0, dim=1)       # [s, S], softmax over points
    expected = (a1 @ (a2 @ V) + Q) @ tqa.unzip.weight.T
    assert torch.allclose(tqa(x), expected, atol=1e-5)
    assert tqa.num_queries == 5 and TransientQueryAttention(6, embed_dim=4).num_queries == 12


def test_tqa_results_do_not_depend_on_chunk_size(tqa):
    x = torch.randn(1000, 6) * 3
    w = torch.rand(1000)
    full = tqa(x, w, chunk=100_000)
    for chunk in (1, 7, 333):
        assert torch.allclose(tqa(x, w, chunk=chunk), full, atol=1e-5)


def test_tqa_weights_exclude_and_duplicate_points(tqa):
    x = torch.randn(6, 6)
    # Weight 0 removes a point from the pooled set.
    s_masked = tqa.summarize(x, torch.tensor([1.0, 1, 1, 1, 1, 0]))
    assert torch.allclose(s_masked, tqa.summarize(x[:5]), atol=1e-6)
    # Weight 2 counts a point twice.
    s_w2 = tqa.summarize(x[:2], torch.tensor([2.0, 1.0]))
    assert torch.allclose(s_w2, tqa.summarize(torch.cat([x[:1], x[:1], x[1:2]])), atol=1e-6)
    # All weights 0: nothing to pool, a zero summary rather than NaN.
    assert torch.equal(tqa.summarize(x, torch.zeros(6)), torch.zeros(5, 4))


def test_tqa_decode_commutes_with_compositing(tqa):
    h = torch.randn(3, 10, 4)  # rays x samples x E
    w = torch.rand(3, 10)
    per_sample = (w[..., None] * tqa.decode(h)).sum(1)
    per_pixel = tqa.decode((w[..., None] * h).sum(1))
    assert torch.allclose(per_sample, per_pixel, atol=1e-5)


def test_tqa_gradients_reach_every_parameter(tqa):
    x = torch.randn(20, 6, requires_grad=True)
    tqa(x).square().sum().backward()
    for name, p in tqa.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad is not None


def test_adapter_residual_ratio():
    torch.manual_seed(1)
    x = torch.randn(9, 16)
    assert torch.allclose(Adapter(16, alpha=0.0)(x), x)
    a = Adapter(16, alpha=0.2)
    u = a.attention(x)
    expected = 0.2 * (a.bottleneck(u) + u) + 0.8 * x
    assert torch.allclose(a(x), expected, atol=1e-6)
    assert a.bottleneck[0].out_features == 8  # 16 -> 8 -> 16, as 512 -> 256 -> 512


def test_self_cross_loss_hand_made():
    clip = torch.tensor([[1.0, 0.0]])
    rend = torch.tensor([[0.0, 1.0]])
    double = lambda x, weight=None: 2 * x  # noqa: E731  (a stand-in adapter: self terms are perfect)
    # Self terms 0; cross terms 1 - cos(2F^, F) = 1 each -> (1 - beta) * 2.
    assert math.isclose(float(self_cross_loss(double, clip, rend, beta=0.3)), 1.4, rel_tol=1e-6)
    # Before cross-training: only the CLIP self term.
    assert float(self_cross_loss(double, clip, rend, cross=False)) == 0.0
    swap = lambda x, weight=None: x.flip(-1)  # noqa: E731
    # Self terms 1 each, cross terms 0 -> beta * 2.
    assert math.isclose(float(self_cross_loss(swap, clip, rend, beta=0.3)), 0.6, rel_tol=1e-6)


def test_self_cross_loss_gradients():
    torch.manual_seed(2)
    adapter = Adapter(8)
    clip = torch.randn(5, 8, requires_grad=True)
    rend = torch.randn(5, 8, requires_grad=True)
    self_cross_loss(adapter, clip, rend).backward()
    assert clip.grad is None  # CLIP is frozen: targets and inputs carry no gradient
    assert rend.grad is not None and rend.grad.abs().sum() > 0  # through A(F^)
    assert all(p.grad is not None for p in adapter.parameters())


def test_distillation_loss_and_logits():
    rend = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    target = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = distillation_loss(rend, target)
    assert math.isclose(loss.item(), (0.0 + (1 - 1 / math.sqrt(2))) / 2, rel_tol=1e-6)
    loss.backward()
    assert target.grad is None and rend.grad is not None
    z = segmentation_logits(torch.tensor([[3.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert torch.allclose(z, torch.tensor([[1.0, 1 / math.sqrt(2)]]))


def test_label_field_compositing_is_exact():
    torch.manual_seed(3)
    field = LabelField(code_dim=4, dim=10)
    codes = torch.randn(2, 7, 4)
    w = torch.rand(2, 7)
    composited = (w[..., None] * codes).sum(1)
    lifted_each = (w[..., None] * field.lift(codes)).sum(1)
    assert torch.allclose(torch.softmax(lifted_each, -1), field(composited), atol=1e-6)
    assert torch.allclose(field(composited).sum(-1), torch.ones(2))


def test_label_ce_loss_hand_made():
    text = torch.eye(2)
    label = torch.tensor([[1.0, 0.0]], requires_grad=True)
    clip_cos = torch.tensor([[0.4, 0.2]], requires_grad=True)
    rend_cos = torch.tensor([[0.1, 0.3]], requires_grad=True)
    loss = label_ce_loss(label, clip_cos, rend_cos, text, gamma=0.5, tau=0.2, tau_label=0.1)
    p = torch.softmax(torch.tensor([1.0, 0.0]) / 0.1, 0)
    zi = torch.softmax(torch.tensor([0.4, 0.2]) / 0.2, 0)
    z = torch.softmax(torch.tensor([0.1, 0.3]) / 0.2, 0)
    expected = -((0.5 * zi + 0.5 * z) * p.log()).sum() - (p * z.log()).sum()
    assert math.isclose(loss.item(), float(expected), rel_tol=1e-5)
    loss.backward()
    # The label field and the rendered logits learn; CLIP is the anchor (no gradient).
    assert label.grad is not None and rend_cos.grad is not None
    assert clip_cos.grad is None or torch.all(clip_cos.grad == 0)
    # Minimising pulls the rendered logits towards the pseudo-label's class (class 0).
    assert rend_cos.grad[0, 0] < 0 < rend_cos.grad[0, 1]


def test_label_ce_cannot_collapse_onto_the_rendered_class():
    """CLIP says class 0 everywhere, rendered features say class 1: the label field must follow the
    ensemble (not jump to the rendered class), so its gradient favours class 0 when gamma is high."""
    text = torch.eye(2)
    label = torch.tensor([[0.0, 0.0]], requires_grad=True)
    loss = label_ce_loss(label, torch.tensor([[0.9, 0.0]]), torch.tensor([[0.0, 0.9]]), text, gamma=0.8)
    loss.backward()
    assert label.grad[0, 0] < 0 < label.grad[0, 1]


def test_label_ce_class_axis_is_last():
    """Permuting classes (text rows and logit columns together) must not change the loss."""
    torch.manual_seed(4)
    label, text = torch.rand(5, 6), torch.randn(3, 6)
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    perm = torch.tensor([2, 0, 1])
    l1 = label_ce_loss(label, a, b, text)
    l2 = label_ce_loss(label, a[:, perm], b[:, perm], text[perm])
    assert torch.allclose(l1, l2, atol=1e-6)
    assert torch.allclose(label_pseudo_targets(label, text).sum(-1), torch.ones(5))


def test_text_augmentation():
    assert augment_prompts(["mug", "red book"]) == ["mug mug", "red book red book"]
    logits = torch.tensor([[[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]]])  # 1 view, 3 tokens, 2 classes
    norm = minmax_per_view(logits)
    assert torch.allclose(norm[0, :, 0], torch.tensor([0.0, 1.0, 0.5]))
    assert torch.equal(norm[0, :, 1], torch.zeros(3))  # constant slice -> 0, not NaN
    grids = torch.randn(2, 3, 4, 8, requires_grad=True)
    target = text_aug_targets(grids, torch.randn(5, 8))
    assert target.shape == (2, 3, 4, 5) and not target.requires_grad
    assert torch.allclose(target.amin(dim=(1, 2)), torch.zeros(2, 5))
    assert torch.allclose(target.amax(dim=(1, 2)), torch.ones(2, 5))
    pred = torch.tensor([[0.2, 0.4]], requires_grad=True)
    assert text_aug_loss(pred, torch.tensor([[1.0, 2.0]])).item() < 1e-6
    assert text_aug_loss(pred, torch.tensor([[2.0, 1.0]])).item() > 0.1


def test_feature_logits_equal_cosine_of_decoded_features():
    """The cheap segmentation path (no D-dim features per pixel) gives the same logits as decoding first."""
    from laser_gs.training.semantic import SemanticSettings, SemanticHeads

    torch.manual_seed(0)
    heads = SemanticHeads(SemanticSettings(embed_dim=8, point_dim=12), dim=40)
    h = torch.randn(5, 7, 8)
    text = torch.randn(4, 40)
    expected = segmentation_logits(heads.decode(h), text)
    assert torch.allclose(heads.feature_logits(h, text), expected, atol=1e-5)
