"""LERF-OVS labels and protocol: polygon rasterisation against a brute-force reference, the 3D-OVS masks of a
generated scene round-tripped through LERF-OVS JSON, errors naming the file, and `laser eval --protocol
lerf-ovs` on a trained run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from laser_gs.data.lerf_ovs import find_label_dir, polygon_mask, read_lerf_labels, write_lerf_labels
from laser_gs.errors import LaserError, SceneError
from laser_gs.evaluation_lerf import check_categories, query_scores, relevancy, score_frames


def _inside_brute(px: float, py: float, poly: list[tuple[float, float]]) -> bool:
    """Ray casting, one point at a time (the independent reference)."""
    inside = False
    for k in range(len(poly)):
        (x0, y0), (x1, y1) = poly[k], poly[(k + 1) % len(poly)]
        if (y0 > py) != (y1 > py) and px < x0 + (py - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def test_polygon_mask_matches_brute_force_on_a_concave_polygon():
    poly = [(1.2, 1.0), (14.7, 2.3), (8.1, 6.6), (13.9, 11.4), (2.2, 10.8), (5.0, 6.0)]
    mask = polygon_mask(np.array(poly), (16, 12))
    ref = np.array([[_inside_brute(x + 0.5, y + 0.5, poly) for x in range(16)] for y in range(12)])
    assert mask.sum() > 40 and (mask == ref).all()


def _scene(generated):
    from laser_gs.data import load_scene

    return load_scene(generated[0])


def test_3dovs_masks_round_trip_through_lerf_ovs_json(generated, tmp_path):
    scene = _scene(generated)
    size = (scene.width, scene.height)
    write_lerf_labels(tmp_path / "label", scene.image_names, size, scene.classes, scene.gt_masks)
    frames = read_lerf_labels(tmp_path / "label", scene.image_names, size)
    assert [f.view for f in frames] == sorted(scene.gt_masks)
    for fr in frames:
        gt = scene.gt_masks[fr.view]
        present = [c for i, c in enumerate(scene.classes) if gt[i].any()]
        assert sorted(fr.masks) == sorted(present)
        for c, m in fr.masks.items():
            assert torch.equal(m, gt[scene.classes.index(c)])
            ys, xs = torch.nonzero(m, as_tuple=True)
            assert fr.boxes[c].tolist() == [[xs.min().item(), ys.min().item(), xs.max().item() + 1,
                                              ys.max().item() + 1]]


def test_labels_at_full_resolution_are_scaled_to_the_loaded_images(generated, tmp_path):
    scene = _scene(generated)
    size = (scene.width, scene.height)
    write_lerf_labels(tmp_path / "label", scene.image_names, size, scene.classes, scene.gt_masks)
    for p in (tmp_path / "label").glob("*.json"):  # the same labels drawn on a 2x larger original
        d = json.loads(p.read_text())
        d["info"].update(width=2 * size[0], height=2 * size[1])
        for o in d["objects"]:
            o["segmentation"] = [[[2 * x, 2 * y] for x, y in poly] for poly in o["segmentation"]]
            o["bbox"] = [2 * v for v in o["bbox"]]
        p.write_text(json.dumps(d))
    frames = read_lerf_labels(tmp_path / "label", scene.image_names, size)
    for fr in frames:
        for c, m in fr.masks.items():
            assert torch.equal(m, scene.gt_masks[fr.view][scene.classes.index(c)])


@pytest.mark.parametrize("case, match", [
    ("outside", "polygon outside the"),
    ("frame", "is not an image of the scene"),
    ("json", "cannot read LERF-OVS label"),
    ("shape", "not a LERF-OVS label"),
    ("points", "at least 3 finite"),
])
def test_broken_labels_name_the_file(generated, tmp_path, case, match):
    scene = _scene(generated)
    size = (scene.width, scene.height)
    paths = write_lerf_labels(tmp_path / "label", scene.image_names, size, scene.classes, scene.gt_masks)
    bad = paths[0]
    d = json.loads(bad.read_text())
    if case == "outside":
        d["objects"][0]["segmentation"] = [[[0, 0], [size[0] + 40, 0], [0, 5]]]
    elif case == "frame":
        d["info"]["name"] = "frame_99999.jpg"
        bad = bad.rename(bad.with_name("frame_99999.json"))
    elif case == "shape":
        d = {"objects": []}
    elif case == "points":
        d["objects"][0]["segmentation"] = [[[0, 0], [3, 3]]]
    bad.write_text("{broken" if case == "json" else json.dumps(d))
    with pytest.raises(SceneError, match=match) as err:
        read_lerf_labels(tmp_path / "label", scene.image_names, size)
    assert bad.name in str(err.value)


def test_unknown_category_lists_the_runs_classes(generated, tmp_path):
    scene = _scene(generated)
    paths = write_lerf_labels(tmp_path / "label", scene.image_names, (scene.width, scene.height), scene.classes,
                              scene.gt_masks)
    d = json.loads(paths[0].read_text())
    d["objects"][0]["category"] = "teapot"
    paths[0].write_text(json.dumps(d))
    frames = read_lerf_labels(tmp_path / "label", scene.image_names, (scene.width, scene.height))
    with pytest.raises(LaserError, match="unknown category 'teapot'.*" + scene.classes[0]):
        check_categories(frames, scene.classes)


def test_relevancy_scores_an_oracle_perfectly_and_a_swapped_prediction_badly(generated, tmp_path):
    scene = _scene(generated)
    size = (scene.width, scene.height)
    write_lerf_labels(tmp_path / "label", scene.image_names, size, scene.classes, scene.gt_masks)
    frames = read_lerf_labels(tmp_path / "label", scene.image_names, size)
    oracle = {v: m.permute(1, 2, 0).float() for v, m in scene.gt_masks.items()}  # [H, W, C] cos 1 on its class
    s = score_frames(oracle, frames, scene.classes, 0.7)
    assert s["miou"] == pytest.approx(100.0) and s["localization"] == 100.0
    assert s["queries"] == sum(len(f.masks) for f in frames)
    swapped = {v: o.roll(1, dims=-1) for v, o in oracle.items()}  # every pixel scored as the next class
    bad = score_frames(swapped, frames, scene.classes, 0.7)
    assert bad["miou"] < 30 and bad["localization"] < 50
    # relevancy: the query's pairwise softmax against its strongest negative
    cos = torch.tensor([[[0.9, 0.1, 0.5]]])
    assert relevancy(cos, 0).item() == pytest.approx(1 / (1 + np.exp(-10 * 0.4)))
    iou, hit = query_scores(torch.tensor([[0.0, 1.0], [0.2, 0.9]]), torch.tensor([[False, True], [False, True]]),
                            torch.tensor([[1.0, 0.0, 2.0, 1.0]]), 0.7)
    assert iou == 100.0 and hit


def test_eval_protocol_lerf_ovs_on_a_trained_run(generated, tmp_path):
    from conftest import fit
    from laser_gs.evaluation_lerf import DEFAULT_THRESHOLD
    from laser_gs.features.extract import load_features
    from laser_gs_cli.main import laser

    scene_dir = tmp_path / "scene"
    shutil.copytree(generated[0], scene_dir)
    scene, _ = fit("gsplat", scene_dir, tmp_path / "run", 40,
                   overrides=["semantic.method=lift", "gsplat.init_points=3000"])
    write_lerf_labels(scene_dir / "label", scene.image_names, (scene.width, scene.height), scene.classes,
                      scene.gt_masks)
    assert find_label_dir(scene_dir) == scene_dir / "label"
    res = CliRunner().invoke(laser, ["eval", str(tmp_path / "run"), "--protocol", "lerf-ovs", "--no-timing",
                                     "--json", str(tmp_path / "lerf.json")])
    assert res.exit_code == 0, res.output
    assert "LERF-OVS protocol" in res.output and "localisation accuracy" in res.output
    r = json.loads((tmp_path / "lerf.json").read_text())
    frames = read_lerf_labels(scene_dir / "label", scene.image_names, (scene.width, scene.height))
    assert r["queries"] == sum(len(f.masks) for f in frames) and set(r["per_class"]) <= set(scene.classes)
    # the teacher's figures through an independent path: the feature grids scored directly
    feats = load_features("precomputed", scene)
    import torch.nn.functional as F

    cos = {}
    for fr in frames:
        g = feats.grids[scene.image_names[fr.view]].permute(2, 0, 1)[None].float()
        up = F.interpolate(g, size=(scene.height, scene.width), mode="bilinear", align_corners=False)[0]
        cos[fr.view] = F.normalize(up.permute(1, 2, 0), dim=-1) @ F.normalize(feats.text.float(), dim=-1).T
    t = score_frames(cos, frames, scene.classes, DEFAULT_THRESHOLD)
    assert r["teacher"]["miou"] == pytest.approx(t["miou"], abs=1e-6)
    assert r["teacher"]["localization"] == pytest.approx(t["localization"])
    # without labels: one line, exit 2
    shutil.rmtree(scene_dir / "label")
    res = CliRunner().invoke(laser, ["eval", str(tmp_path / "run"), "--protocol", "lerf-ovs", "--no-timing"])
    assert res.exit_code == 2 and "pass --labels DIR" in res.output
