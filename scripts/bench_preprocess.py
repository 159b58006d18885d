#!/usr/bin/env python
"""Dense CLIP features (one pass per view) vs a LERF / 3D-OVS style multi-scale patch pyramid.

The paper's Figure 1 claim, measured on the same model and views: seconds per view and bytes
stored per scene for both extractions, and their ratios. Without CLIP weights the model is a
tiny randomly initialised open_clip ViT (the cost ratio is what is measured: both extractions
run the same tower); with --clip-weights the real ViT-B/16.

    python scripts/bench_preprocess.py                 # full: the default synthetic scene, 24 views
    python scripts/bench_preprocess.py --quick         # CI-sized
    python scripts/bench_preprocess.py --clip-weights ViT-B-16.bin
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _bench_common import append_doc, machine, write_json


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", type=Path, default=None, help="scene folder (default: generate the synthetic one)")
    ap.add_argument("--clip-weights", type=Path, default=None, help="real ViT-B/16 weights (default: tiny random)")
    ap.add_argument("--views", type=int, default=None, help="views to time (default: all; --quick: 2)")
    ap.add_argument("--vit-b16-random", action="store_true",
                    help="also time the real ViT-B/16 architecture with random weights (cost does not depend on "
                         "the weight values): dense fully, the pyramid from the measured cost of a batch of crops "
                         "times the number of crops")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_preprocess"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from laser_gs.data import load_scene
    from laser_gs.features.dense_clip import load_clip, tiny_clip
    from _patch_pyramid import PyramidSpec, encode_pyramid
    from laser_gs.synthetic import SceneSpec, make_scene

    torch.manual_seed(0)
    scene_dir = args.scene
    if scene_dir is None:
        scene_dir = args.out / "scene"
        if not (scene_dir / "scene.json").is_file():
            make_scene(scene_dir, SceneSpec(width=96, height=72, views=4, annotated=1, feature_dim=32)
                       if args.quick else SceneSpec())
    scene = load_scene(scene_dir)
    clip = load_clip("naclip", weights=args.clip_weights) if args.clip_weights else tiny_clip("naclip")
    n_views = args.views or (2 if args.quick else scene.num_views)
    views = list(range(min(n_views, scene.num_views)))
    spec = PyramidSpec()
    bytes_per_value = 2  # both stored as float16, as `laser features extract` stores dense grids
    dense_s, pyr_s, dense_bytes, pyr_bytes, crops = 0.0, 0.0, 0, 0, 0
    clip.encode_image(scene.images[0])  # warm-up
    for v in views:
        t0 = time.perf_counter()
        grid = clip.encode_image(scene.images[v])
        dense_s += time.perf_counter() - t0
        dense_bytes += grid.numel() * bytes_per_value
        t0 = time.perf_counter()
        pyramid = encode_pyramid(clip, scene.images[v], spec)
        pyr_s += time.perf_counter() - t0
        pyr_bytes += sum(g.numel() for g in pyramid) * bytes_per_value
        crops += sum(g.shape[0] * g.shape[1] for g in pyramid)
    k = len(views)
    result = {
        "machine": machine(), "scene": str(scene_dir), "resolution": [scene.width, scene.height], "views": k,
        "model": clip.name, "pyramid": {"scales": spec.scales(), "overlap": spec.overlap,
                                        "crops_per_view": crops / k},
        "dense_seconds_per_view": dense_s / k, "pyramid_seconds_per_view": pyr_s / k,
        "time_ratio": pyr_s / max(dense_s, 1e-9),
        "dense_bytes_per_scene": dense_bytes * scene.num_views // k,
        "pyramid_bytes_per_scene": pyr_bytes * scene.num_views // k,
        "bytes_ratio": pyr_bytes / max(dense_bytes, 1),
        "dense_grid": list(np.array(grid.shape)),
    }
    result["dense_grid"] = [int(x) for x in result["dense_grid"]]
    if args.vit_b16_random:
        result["vit_b16_random"] = _vit_b16(scene, views, crops / k)
    print(f"dense:   {result['dense_seconds_per_view'] * 1000:8.1f} ms/view, "
          f"{result['dense_bytes_per_scene'] / 2**20:8.2f} MB/scene (grid {result['dense_grid']})")
    print(f"pyramid: {result['pyramid_seconds_per_view'] * 1000:8.1f} ms/view, "
          f"{result['pyramid_bytes_per_scene'] / 2**20:8.2f} MB/scene ({crops / k:.0f} crops/view)")
    print(f"ratio (pyramid / dense): time {result['time_ratio']:.1f}x, storage {result['bytes_ratio']:.1f}x")
    table = ("| extraction | ms per view | MB per scene | crops or passes per view |\n|---|---|---|---|\n"
             f"| dense (ours, {clip.name}) | {result['dense_seconds_per_view'] * 1000:.1f} | "
             f"{result['dense_bytes_per_scene'] / 2**20:.2f} | 1 pass |\n"
             f"| patch pyramid (LERF-style, 7 scales 5-50 %, 50 % overlap) | "
             f"{result['pyramid_seconds_per_view'] * 1000:.1f} | {result['pyramid_bytes_per_scene'] / 2**20:.2f} | "
             f"{crops / k:.0f} crops |\n"
             f"| ratio pyramid / dense | {result['time_ratio']:.1f}x | {result['bytes_ratio']:.1f}x | |")
    if args.vit_b16_random:
        vb = result["vit_b16_random"]
        table += (f"\n| dense, ViT-B/16 architecture (random weights) | {vb['dense_seconds_per_view'] * 1000:.0f} | "
                  f"{result['dense_bytes_per_scene'] / 2**20 * 512 / clip.dim:.2f} | 1 pass |\n"
                  f"| patch pyramid, ViT-B/16 architecture, {vb['crops_timed']} crops timed, scaled to "
                  f"{crops / k:.0f} | {vb['pyramid_seconds_per_view'] * 1000:.0f} | "
                  f"{result['pyramid_bytes_per_scene'] / 2**20 * 512 / clip.dim:.2f} | {crops / k:.0f} crops |\n"
                  f"| ratio pyramid / dense, ViT-B/16 | {vb['time_ratio']:.0f}x | {result['bytes_ratio']:.1f}x | |")
    append_doc(f"Preprocessing: dense CLIP vs patch pyramid ({scene.width}x{scene.height}, {k} views)",
               " ".join(["python scripts/bench_preprocess.py", *(sys.argv[1:] if argv is None else argv)]), table,
               args.quick)
    write_json(args.json, result)
    return result


def _vit_b16(scene, views: list[int], crops_per_view: float, timed: int = 32) -> dict:
    """Dense and pyramid cost of the ViT-B/16 architecture (random init, real open_clip code path)."""
    import open_clip
    import torch

    from laser_gs.features.dense_clip import DenseCLIP

    model = open_clip.create_model("ViT-B-16-quickgelu", pretrained=None)
    clip = DenseCLIP(model=model, tokenizer=open_clip.get_tokenizer("ViT-B-16"), mode="naclip",
                     name="ViT-B-16 (random init)")
    clip.encode_image(scene.images[views[0]])  # warm-up
    t0 = time.perf_counter()
    for v in views:
        clip.encode_image(scene.images[v])
    dense = (time.perf_counter() - t0) / len(views)
    crops = torch.rand(timed, 3, clip.native_size, clip.native_size)
    with torch.no_grad():
        clip.model.encode_image(crops[:4])
        t0 = time.perf_counter()
        clip.model.encode_image(crops)
    per_crop = (time.perf_counter() - t0) / timed
    pyramid = per_crop * crops_per_view
    print(f"ViT-B/16 (random init): dense {dense * 1000:.0f} ms/view, pyramid {pyramid:.1f} s/view "
          f"({per_crop * 1000:.0f} ms per crop x {crops_per_view:.0f}), ratio {pyramid / dense:.0f}x")
    return {"dense_seconds_per_view": dense, "seconds_per_crop": per_crop, "crops_timed": timed,
            "pyramid_seconds_per_view": pyramid, "time_ratio": pyramid / dense}


if __name__ == "__main__":
    main()
