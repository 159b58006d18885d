"""The shared semantic field (and the box the gsplat backend evaluates it in): shapes, rebuild from a
checkpoint, and why it exists."""

from __future__ import annotations

import torch

from laser_gs.backends.gsplat.semantic_field import field_box, gaussian_appearance, normalise
from laser_gs.semantics.field import SemanticField
from laser_gs.semantics.volume import resolution_for


def _field(means, voxels, app_dim, point_dim, code_dim):
    box = field_box(means)
    return SemanticField(resolution_for(box, voxels), app_dim, point_dim, code_dim), box


def _cloud(n: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) * torch.tensor([4.0, 2.0, 3.0]) + torch.tensor([-2.0, 0.0, 5.0])
    means[:5] = torch.tensor([1e3, -1e3, 50.0])  # a few far floaters must not stretch the box
    return means, torch.rand(n, 3 + 9, generator=g)


def test_box_ignores_floaters_and_normalises_into_the_cube():
    means, _ = _cloud()
    box = field_box(means)
    assert (box[0] < torch.tensor([-1.9, 0.05, 5.1])).all() and (box[1] > torch.tensor([1.9, 1.95, 7.9])).all()
    assert (box[1] - box[0]).max() < 5.0  # the 1e3 floaters are outside
    field, box = _field(means, 32 ** 3, 12, point_dim=8, code_dim=4)
    xyz = normalise(means, box)
    assert xyz.abs().max() <= 1.0 and xyz[5:].abs().max() < 1.0
    assert field.resolution[0] > field.resolution[1]  # follows the box's aspect (4 x 2 x 3)


def test_outputs_and_rebuild_from_meta():
    means, app = _cloud()
    torch.manual_seed(0)
    field, box = _field(means, 24 ** 3, app.shape[1], point_dim=8, code_dim=4)
    xyz = normalise(means, box)
    feat, code = field(xyz, app)
    assert feat.shape == (means.shape[0], 8) and code.shape == (means.shape[0], 4)
    again = SemanticField.from_meta(field.meta())
    again.load_state_dict(field.state_dict())
    feat2, code2 = again(xyz, app)
    assert torch.equal(feat, feat2) and torch.equal(code, code2)


def test_appearance_is_colour_plus_view_dependent_terms_and_detached():
    sh0 = torch.zeros(10, 1, 3, requires_grad=True)
    shN = torch.ones(10, 3, 3, requires_grad=True)
    app = gaussian_appearance(sh0, shN)
    assert app.shape == (10, 12) and not app.requires_grad
    assert torch.allclose(app[:, :3], torch.full((10, 3), 0.5))  # SH DC 0 is mid grey


def test_labels_learned_on_some_gaussians_reach_their_unseen_neighbours():
    """The reason for the field: evidence on part of an object reaches the rest of it.

    Gaussians left of x = 0 are class 0, right of it class 1; only every other Gaussian is supervised.
    Through the field the unsupervised ones are classified correctly; free per-Gaussian codes stay at chance.
    """
    means, _ = _cloud(3000, seed=1)
    means = means[5:]
    app = torch.zeros(means.shape[0], 12)  # same appearance everywhere: only position can tell them apart
    labels = (means[:, 0] > 0).long()
    seen = torch.arange(means.shape[0]) % 2 == 0
    torch.manual_seed(0)
    field, box = _field(means, 16 ** 3, 12, point_dim=8, code_dim=2)
    xyz = normalise(means, box)
    free = torch.nn.Parameter(0.1 * torch.randn(means.shape[0], 2))
    opt = torch.optim.Adam(list(field.parameters()) + [free], lr=1e-2)
    for _ in range(150):
        _, code = field(xyz, app)
        loss = torch.nn.functional.cross_entropy(code[seen], labels[seen]) + \
            torch.nn.functional.cross_entropy(free[seen], labels[seen])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, code = field(xyz, app)
    field_acc = (code.argmax(-1)[~seen] == labels[~seen]).float().mean()
    free_acc = (free.argmax(-1)[~seen] == labels[~seen]).float().mean()
    assert field_acc > 0.95, field_acc
    assert 0.3 < free_acc < 0.7, free_acc
