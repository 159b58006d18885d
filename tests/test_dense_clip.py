"""Dense CLIP on tiny random open_clip models (real tokenizer and code path), and feature extraction."""

import json
import time

import pytest
import torch
from click.testing import CliRunner

from laser_gs_cli.main import laser
from laser_gs.data import load_scene
from laser_gs.errors import WeightsError
from laser_gs.features.dense_clip import MODES, load_clip, tiny_clip
from laser_gs.features.extract import load_features


@pytest.fixture(scope="module")
def clip():
    return tiny_clip("vanilla", seed=0)


def test_vanilla_equals_open_clip_projected_tokens(clip):
    img = torch.rand(2, 3, 64, 64)
    clip.mode = "vanilla"
    ours = clip.encode_dense(img)
    visual = clip.model.visual
    visual.output_tokens = True
    try:
        _, tokens = visual((img - clip.mean) / clip.std)
    finally:
        visual.output_tokens = False
    assert ours.shape == (2, 4, 4, 32)
    assert torch.allclose(ours.reshape(2, 16, 32), tokens @ visual.proj, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_modes_at_odd_sizes(clip, mode):
    clip.mode = mode
    out = clip.encode_dense(torch.rand(1, 3, 48, 112))  # 3 x 7 tokens: position embeddings interpolated
    assert out.shape == (1, 3, 7, 32) and torch.isfinite(out).all()


@pytest.mark.parametrize("mode", MODES)
def test_modes_run_off_the_cpu(mode):
    """Every mode keeps its tensors on the model's device (the meta device stands in for a GPU: NACLIP's
    neighbourhood bias was built on the CPU and could not be added to CUDA logits)."""
    model = tiny_clip(mode, seed=0)
    model.model.to("meta")
    out = model.encode_dense(torch.rand(1, 3, 64, 64, device="meta"))
    assert out.device.type == "meta" and out.shape == (1, 4, 4, 32)


def test_modes_differ_and_are_deterministic(clip):
    img = torch.rand(1, 3, 64, 64)
    outs = {}
    for m in MODES:
        clip.mode = m
        outs[m] = clip.encode_dense(img)
        assert torch.equal(outs[m], clip.encode_dense(img))
    for a in MODES:
        for b in MODES:
            if a < b:
                assert not torch.allclose(outs[a], outs[b]), (a, b)


def test_non_multiple_size_is_resized_and_refused_raw(clip):
    clip.mode = "naclip"
    assert clip.encode_image(torch.rand(50, 70, 3)).shape == (3, 4, 32)  # 48x64 after resizing
    with pytest.raises(ValueError, match="multiple of the patch size"):
        clip.encode_dense(torch.rand(1, 3, 50, 64))


def test_sliding_windows_stitch(clip):
    clip.mode = "sclip"
    img = torch.rand(96, 160, 3)
    whole = clip.encode_image(img, window=512)
    assert torch.allclose(whole, clip.encode_dense(img.permute(2, 0, 1)[None])[0])
    tiled = clip.encode_image(img, window=64, stride=32)
    assert tiled.shape == (6, 10, 32)
    # The top-left token is covered by the first window only; the bottom-right by the last only.
    first = clip.encode_dense(img.permute(2, 0, 1)[None, :, :64, :64])[0]
    last = clip.encode_dense(img.permute(2, 0, 1)[None, :, 32:, 96:])[0]
    assert torch.allclose(tiled[0, 0], first[0, 0], atol=1e-5)
    assert torch.allclose(tiled[-1, -1], last[-1, -1], atol=1e-5)


def test_text_encoding_normalised(clip):
    t = clip.encode_text(["red mug", "red mug red mug", "sofa"])
    assert t.shape == (3, 32) and torch.allclose(t.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(t[0], t[1])


def test_missing_weights_fail_fast_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    t0 = time.perf_counter()
    with pytest.raises(WeightsError) as err:
        load_clip()
    assert time.perf_counter() - t0 < 1.0
    msg = str(err.value)
    assert "timm/vit_base_patch16_clip_224.openai" in msg and "--clip-weights" in msg
    assert "--features precomputed" in msg


def test_bad_weight_files(tmp_path):
    with pytest.raises(WeightsError, match="weights file not found"):
        load_clip(weights=tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pt: cannot load"):
        load_clip(weights=junk)


def test_cli_extract_writes_a_folder_precomputed_accepts(generated, tmp_path):
    out = tmp_path / "feats"
    result = CliRunner().invoke(laser, ["features", "extract", "--scene", str(generated[0]), "--out", str(out),
                                        "--tiny-random-clip", "--mode", "naclip"])
    assert result.exit_code == 0, result.output
    assert "s/view" in result.output and "MB on disk" in result.output
    scene = load_scene(generated[0])
    fs = load_features("precomputed", scene, features_dir=out)
    assert fs.dim == 32 and fs.grid_size == (72 // 16, 96 // 16)
    assert fs.text.shape == (6, 32) and fs.text_aug is not None
    assert json.loads((out / "meta.json").read_text())["mode"] == "naclip"


def test_cli_extract_missing_weights_exit_2(generated, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = CliRunner().invoke(laser, ["features", "extract", "--scene", str(generated[0]), "--out",
                                        str(tmp_path / "f")])
    assert result.exit_code == 2 and result.output.startswith("Error: CLIP weights")
    assert not (tmp_path / "f").exists()
