"""The precomputed feature directory: round trip and every validation error."""

import json

import numpy as np
import pytest
import torch

from laser_gs.errors import FeatureError
from laser_gs.features import load_feature_dir, write_feature_dir

NAMES = ["00", "01"]
CLASSES = ["a", "b", "c"]


@pytest.fixture
def fdir(tmp_path):
    rng = np.random.default_rng(0)
    feats = {n: rng.normal(size=(3, 4, 8)).astype(np.float32) for n in NAMES}
    write_feature_dir(tmp_path / "f", feats, rng.normal(size=(3, 8)), rng.normal(size=(3, 8)), model="test")
    return tmp_path / "f", feats


def test_round_trip(fdir):
    path, feats = fdir
    fs = load_feature_dir(path, NAMES, CLASSES)
    assert fs.dim == 8 and fs.grid_size == (3, 4) and fs.meta["model"] == "test"
    assert np.allclose(fs.grids["01"].numpy(), feats["01"].astype(np.float16), atol=0)
    assert torch.allclose(fs.text.norm(dim=-1), torch.ones(3)) and fs.text_aug is not None
    assert not list(path.glob("*.tmp")) and not list(path.glob(".*.tmp"))


def test_wrong_row_count(fdir):
    with pytest.raises(FeatureError, match="has 3 rows but classes.txt has 4 classes"):
        load_feature_dir(fdir[0], NAMES, CLASSES + ["d"])


def test_wrong_dim(fdir):
    np.save(fdir[0] / "01.npy", np.zeros((3, 4, 7), np.float16))
    with pytest.raises(FeatureError, match="01.npy: feature dim is 7 but meta.json says 8"):
        load_feature_dir(fdir[0], NAMES, CLASSES)


def test_nan(fdir):
    arr = np.zeros((3, 4, 8), np.float16)
    arr[1, 1, 1] = np.nan
    np.save(fdir[0] / "00.npy", arr)
    with pytest.raises(FeatureError, match="00.npy: contains NaN"):
        load_feature_dir(fdir[0], NAMES, CLASSES)


def test_missing_grid_and_meta(fdir):
    (fdir[0] / "01.npy").unlink()
    with pytest.raises(FeatureError, match="01.npy: file not found"):
        load_feature_dir(fdir[0], NAMES, CLASSES)
    (fdir[0] / "meta.json").unlink()
    with pytest.raises(FeatureError, match="meta.json: file not found"):
        load_feature_dir(fdir[0], NAMES, CLASSES)


def test_bad_meta(fdir):
    (fdir[0] / "meta.json").write_text(json.dumps({"model": "x"}))
    with pytest.raises(FeatureError, match="cannot read 'dim'"):
        load_feature_dir(fdir[0], NAMES, CLASSES)


def test_text_dim_mismatch(fdir):
    np.save(fdir[0] / "text_embeddings.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(FeatureError, match=r"expected \[C, 8\]"):
        load_feature_dir(fdir[0], NAMES, CLASSES)
