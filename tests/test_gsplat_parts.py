"""Pieces of the gsplat backend on their own: the tensor-keyed cache of its semantic outputs and selecting a
subset of the Gaussians with all their per-Gaussian state."""

from __future__ import annotations

import torch

from conftest import fit
from laser_gs.backends.gsplat.cache import TensorKeyedCache


def test_the_cache_recomputes_exactly_when_an_input_changes():
    calls = []
    a, b = torch.ones(3), torch.zeros(2)

    def compute():
        calls.append(1)
        return a.sum() + b.sum()

    cache = TensorKeyedCache()
    with torch.no_grad():
        assert cache.get([a, b], compute) == 3 and cache.get([a, b], compute) == 3 and len(calls) == 1
        a.add_(1)  # in place (an optimizer step, load_state_dict, copy_)
        assert cache.get([a, b], compute) == 6 and len(calls) == 2
        b = torch.ones(2)  # replaced (densification, loading)
        assert cache.get([a, b], compute) == 8 and len(calls) == 3
        assert cache.get([a], compute) == 8 and len(calls) == 4  # another set of inputs
    assert cache.get([a], compute) == 8 and len(calls) == 5  # under autograd: never cached


def test_select_gaussians_keeps_every_per_gaussian_state(generated, tmp_path):
    scene, backend = fit("gsplat", generated[0], tmp_path / "run", 40, overrides=["gsplat.init_points=2000"])
    n = backend.params["means"].shape[0]
    before = {k: v.detach().clone() for k, v in backend.params.items()}
    lifted_h = backend.lifted_h.clone()
    with torch.no_grad():
        full = backend.render(scene.cameras, 0, ("logits",), backend.text)["logits"]
    idx = torch.cat([torch.arange(n), torch.arange(0, n, 2)])  # all, then every other one again
    backend.select_gaussians(idx)
    assert backend.params["means"].shape[0] == len(idx) and backend.lifted_h.shape[0] == len(idx)
    for k, v in backend.params.items():
        assert torch.equal(v.detach(), before[k][idx]), k
    assert torch.equal(backend.lifted_h, lifted_h[idx])
    backend.select_gaussians(torch.arange(n))  # back to the original set: the same picture (cache refreshed)
    with torch.no_grad():
        again = backend.render(scene.cameras, 0, ("logits",), backend.text)["logits"]
    assert torch.allclose(full, again, atol=1e-5)
