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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts._bench_common import append_doc, machine, write_json  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", type=Path, default=None, help="scene folder (default: generate the synthetic one)")
    ap.add_argument("--clip-weights", type=Path, default=None, help="real ViT-B/16 weights (default: tiny random)")
    ap.add_argument("--views", type=int, default=None, help="views to time (default: all; --quick: 2)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_preprocess"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from laser_gs.data import load_scene
    from laser_gs.features.dense_clip import load_clip, tiny_clip
    from laser_gs.features.patch_pyramid import PyramidSpec, encode_pyramid
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
    append_doc(f"Preprocessing: dense CLIP vs patch pyramid ({scene.width}x{scene.height}, {k} views)",
               "python scripts/bench_preprocess.py" + (f" --scene {args.scene}" if args.scene else ""), table,
               args.quick)
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
