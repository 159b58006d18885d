"""Varied generated scenes: random layouts with their hard cases, orbit cameras, and honest text augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from laser_gs.data import load_scene
from laser_gs.synthetic import SceneSpec, make_scene
from laser_gs.synthetic.layouts import COLOURS, random_layout
from laser_gs_cli.main import laser


def test_random_layout_has_the_hard_cases_it_was_asked_for():
    lay = random_layout(objects=5, similar=3, small=1, camouflage=True, seed=4)
    names = [o.name for o in lay.objects]
    assert len(set(names)) == len(names) and names[0] == "grey wall" and names[2] == "grey pillar"
    colours = [n.split()[0] for n in names[3:]]
    shared = max(set(colours), key=colours.count)
    assert colours.count(shared) == 3 and shared in COLOURS
    group = next(g for g in lay.confusable if len(g) == 3)
    assert {names[i].split()[0] for i in group} == {shared}
    assert (0, 2) in lay.confusable  # the pillar is confused with its wall
    small = lay.objects[-1].primitive
    size = getattr(small, "radius", None) or max(getattr(small, "half", (0,)))
    assert size <= 0.26


def test_orbit_scene_circles_the_objects(tmp_path):
    spec = SceneSpec(width=64, height=48, views=8, annotated=2, feature_dim=16, layout="random", objects=3,
                     cameras="orbit", seed=2)
    out = tmp_path / "orbit"
    gen = make_scene(out, spec)
    assert gen.classes[:2] == ["wooden floor", "sky"]
    scene = load_scene(out)
    assert not scene.forward_facing
    centres = scene.cameras.centers
    spread = np.degrees(np.ptp(np.unwrap(np.arctan2(centres[:, 2].numpy(), centres[:, 0].numpy()))))
    assert spread > 150  # a wide arc, not a forward-facing rig
    assert (gen.labels >= 0).all()


def test_text_augmentation_embeddings_are_optional_and_training_refuses_without(tmp_path):
    spec = SceneSpec(width=64, height=48, views=6, annotated=2, feature_dim=16)
    make_scene(tmp_path / "plain", spec)
    assert not (tmp_path / "plain" / "features" / "text_embeddings_aug.npy").exists()
    res = CliRunner().invoke(laser, ["train", "--backend", "gsplat", "--scene", str(tmp_path / "plain"), "--out",
                                     str(tmp_path / "run"), "--text-aug"])
    assert res.exit_code == 2 and "text_embeddings_aug.npy" in res.output and not (tmp_path / "run").exists()
    make_scene(tmp_path / "sharp", SceneSpec(width=64, height=48, views=6, annotated=2, feature_dim=16,
                                             text_aug="sharper"))
    plain = np.load(tmp_path / "sharp" / "features" / "text_embeddings.npy")
    aug = np.load(tmp_path / "sharp" / "features" / "text_embeddings_aug.npy")
    assert aug.shape == plain.shape and 0.5 < float((plain * aug).sum(-1).mean()) < 0.995
    meta = json.loads((tmp_path / "sharp" / "features" / "meta.json").read_text())
    assert meta["text_aug"] == "sharper"


@pytest.mark.parametrize("args, needle", [(["--layout", "tabletop", "--cameras", "orbit"], "--cameras"),
                                          (["--layout", "random", "--objects", "2", "--similar", "3"], "--similar")])
def test_make_scene_refuses_impossible_requests(tmp_path, args, needle):
    res = CliRunner().invoke(laser, ["make-scene", str(tmp_path / "s"), *args])
    assert res.exit_code == 2 and needle in res.output
