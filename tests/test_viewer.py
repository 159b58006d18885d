"""`laser view`'s model: queries, colours, selection export, errors; and the CLI's refusals."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from plyfile import PlyData

from laser_gs.errors import LaserError
from laser_gs.export.records import GaussianAttributes, PointSet
from laser_gs.viewer import HIGHLIGHT, ViewerModel
from laser_gs_cli.main import laser


def _model(n: int = 1000, classes: int = 4, dim: int = 16, gaussians: bool = True, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    text = torch.nn.functional.normalize(torch.randn(classes, dim, generator=g), dim=-1)
    label = torch.randint(classes, (n,), generator=g)
    feature = text[label] + 0.05 * torch.randn(n, dim, generator=g)
    gauss = GaussianAttributes(torch.full((n, 3), -3.0), torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
                               torch.full((n,), 2.0), torch.zeros(n, 1, 3), torch.zeros(n, 3, 3)) if gaussians else None
    points = PointSet(torch.randn(n, 3, generator=g), torch.rand(n, 3, generator=g), feature, None, gauss)
    names = [f"class {i}" for i in range(classes)]
    return ViewerModel(points, names, text), label


def test_query_selects_the_points_of_the_prompted_class():
    model, label = _model()
    ans = model.query("Class  2")  # case and spacing do not matter for the run's classes
    assert np.array_equal(ans.selected, (label == 2).numpy())
    colours = model.colours("relevancy")
    assert np.allclose(colours[ans.selected], HIGHLIGHT * (0.6 + 0.4 * ans.relevancy[ans.selected, None]), atol=1e-5)
    assert not np.allclose(colours[~ans.selected][:, 1], HIGHLIGHT[1])
    labels = model.colours("labels")
    assert len({tuple(c) for c in labels[(label == 1).numpy()]}) == 1


def test_bad_prompts_are_notices_not_crashes():
    model, _ = _model()
    for prompt, message in (("   ", "empty"), ("x" * 400, "characters long"), ("a purple elephant", "CLIP")):
        with pytest.raises(LaserError, match=message):
            model.query(prompt)
    with pytest.raises(LaserError, match="type a prompt first"):
        model.export_selection("/tmp", 0.5)


def test_export_selection_writes_the_selected_gaussians(tmp_path):
    model, label = _model()
    model.query("class 1")
    path = model.export_selection(tmp_path, 0.5)
    vertex = PlyData.read(str(path))["vertex"]
    assert path.name == "view_selection_class_1.ply" and vertex.count == int((label == 1).sum())
    assert "opacity" in [p.name for p in vertex.properties]


def test_a_query_over_100k_gaussians_takes_well_under_a_second():
    """The figure docs/benchmarks.md quotes: one prompt, relevancy and new colours for 100k Gaussians (D = 512)."""
    model, _ = _model(n=100_000, classes=6, dim=512)
    t0 = time.perf_counter()
    model.query("class 3")
    model.colours("relevancy")
    seconds = time.perf_counter() - t0
    print(f"query + colours, 100k Gaussians x 512-d: {1000 * seconds:.0f} ms")
    assert seconds < 1.0


def test_view_refuses_a_folder_that_is_not_a_run_and_a_busy_port(tmp_path):
    res = CliRunner().invoke(laser, ["view", str(tmp_path), "--port", "0"])
    assert res.exit_code == 2 and "config.json" in res.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = CliRunner().invoke(laser, ["view", str(tmp_path), "--port", str(port)])
    assert res.exit_code == 2 and "cannot listen there" in res.output and "--port" in res.output


@pytest.mark.parametrize("backend", ["gsplat", "tensorf"])
def test_the_viewer_model_of_a_trained_run(backend, generated, tmp_path):
    """`laser view`'s model from a real (short) run of each backend: Gaussians with covariances for gsplat, a
    coloured surface point cloud for tensorf; a class prompt selects the points whose decoded feature is
    closest to it, and the selection exports as a PLY."""
    from conftest import fit
    from laser_gs.run import open_run
    from laser_gs.viewer import covariances, load_model

    overrides = ["semantic.method=lift"] + (["gsplat.init_points=3000"] if backend == "gsplat" else [])
    fit(backend, generated[0], tmp_path / "run", 40, overrides=overrides)
    config, trained, scene = open_run(tmp_path / "run")
    model = load_model(trained, config, scene, max_points=20_000)
    pts = model.points
    assert 0 < len(pts) <= 20_000 and model.semantic
    assert (pts.gaussians is not None) == (backend == "gsplat")
    if backend == "gsplat":
        cov = covariances(pts)
        assert np.isfinite(cov).all() and (np.linalg.eigvalsh(cov) > 0).all()
    labels = model.labels()
    top = int(np.bincount(labels, minlength=len(scene.classes)).argmax())
    ans = model.query(scene.classes[top].upper())
    assert ans.selected.any() and ans.selected.sum() < len(pts)
    assert (labels[ans.selected] == top).mean() > 0.9  # against the other classes, the selection is the class
    vertex = PlyData.read(str(model.export_selection(tmp_path / "run", 0.5)))["vertex"]
    assert vertex.count == int(ans.selected.sum())


def test_a_run_without_class_text_answers_prompts_through_clip():
    """Features extracted without classes.txt carry no class text: the viewer still answers prompts with the
    run's CLIP (canonical negatives, no label mode), encodes each prompt once per query, and says so clearly
    when CLIP is not available."""
    base, label = _model(classes=4, dim=16)
    calls = []

    def encode(prompts):  # stands in for the run's CLIP text tower: "class i" -> the class's direction, the
        calls.append(list(prompts))  # canonical phrases -> classes 0-2 in turn
        return torch.stack([base.text[int(p.split()[-1])] if p.startswith("class") else base.text[k % 3]
                            for k, p in enumerate(prompts)])

    model = ViewerModel(base.points, [], None, encode)
    assert model.semantic and not model.has_classes
    ans = model.query("class 3")
    assert np.array_equal(ans.selected, (label == 3).numpy())
    assert calls[0] == ["class 3"] and len(calls) == 2  # the prompt, then the canonical negatives
    assert np.allclose(model.colours("labels"), model.rgb)  # no classes: the label mode shows RGB
    no_clip = ViewerModel(base.points, [], None, None)
    assert not no_clip.semantic
    with pytest.raises(LaserError, match="no semantics"):
        no_clip.query("class 3")


def test_point_clouds_get_a_point_size_that_closes_their_surfaces():
    from laser_gs.viewer_server import default_point_size

    h = 0.02
    ii, jj = torch.meshgrid(torch.arange(60.0), torch.arange(60.0), indexing="ij")
    plane = torch.stack([ii * h, jj * h, torch.zeros_like(ii)], -1).reshape(-1, 3)
    assert default_point_size(plane) == pytest.approx(1.2 * h, rel=1e-3)
    assert default_point_size(plane * 10) == pytest.approx(12 * h, rel=1e-3)  # follows the spacing, not the extent


def test_the_viewer_labels_points_as_the_exported_ply_does(tmp_path):
    """Runs with a label head: the viewer's class per point is the export's (ensemble + calibration), even where
    the feature head alone would say another class."""
    from laser_gs.export import export_points

    model, label = _model(n=500, classes=4, dim=16)
    g = torch.Generator().manual_seed(1)
    wrong = (label + 1) % 4  # a label head that disagrees on every point, strongly
    model.points.label = model.text[wrong] * 3 + 0.01 * torch.randn(500, 16, generator=g)
    model.offsets = torch.tensor([0.0, 0.05, 0.0, -0.05])
    path = export_points(model.points, tmp_path / "p.ply", model.classes, model.text, offsets=model.offsets)[0]
    exported = np.asarray(PlyData.read(str(path))["vertex"]["label"])
    shown = model.labels()
    assert np.array_equal(shown, exported)
    assert (shown != (model.features @ model.text.T + model.offsets).argmax(-1).numpy()).any()  # not feature-only
