"""Class calibration before / after on finished runs: the trainer's calibration step, then the annotated views.

    python scripts/bench_calibration.py RUN [RUN ...] [--json out.json]

For each run folder (any backend, trained or lifted): renders the logits without offsets, calibrates exactly as
``laser train`` does at its end (:func:`laser_gs.training.calibrate.calibrate_classes`), and scores the
annotated views without and with the offsets (feature head, as ``laser eval``). The run itself is not
modified. Prints one line per run and a mean +- sd per method name (the run folder's name up to ``_``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    from laser_gs.metrics import segmentation_scores
    from laser_gs.run import open_run
    from laser_gs.semantics.calibration import PromptOffsets
    from laser_gs.training.calibrate import calibrate_classes
    from laser_gs.training.loop import make_console

    results = []
    for run in args.runs:
        _, backend, scene = open_run(run)
        text = backend.text
        if text is None or not scene.annotated_views:
            print(f"{run}: no classes or no annotated views, skipped", file=sys.stderr)
            continue
        backend.heads.prompt_offsets = PromptOffsets()
        logits = {v: backend.render(scene.cameras, v, ("logits",), text)["logits"].cpu()
                  for v in scene.annotated_views}
        t0 = time.perf_counter()
        raised = calibrate_classes(backend, scene, make_console(quiet=True))
        seconds = time.perf_counter() - t0
        offsets = backend.heads.prompt_offsets.for_text(text.cpu())
        row = {"run": str(run), "method": run.name.split("_")[0], "scene": run.parent.name, "offsets": raised,
               "seconds": seconds}
        for tag, off in (("before", torch.zeros_like(offsets)), ("after", offsets)):
            s = segmentation_scores({v: (lg + off).argmax(-1) for v, lg in logits.items()}, scene.gt_masks,
                                    scene.classes)
            row[tag] = {"miou": s["miou"], "per_class": s["per_class"]}
        results.append(row)
        print(f"{row['scene']:<14} {row['method']:<14} {row['before']['miou']:5.1f} -> {row['after']['miou']:5.1f}  "
              f"{seconds:5.1f} s  " + (", ".join(f"{c} +{o:.3f}" for c, o in raised.items()) or "no offsets"),
              flush=True)
    for method in dict.fromkeys(r["method"] for r in results):
        before = [r["before"]["miou"] for r in results if r["method"] == method]
        after = [r["after"]["miou"] for r in results if r["method"] == method]
        sd = (lambda x: statistics.stdev(x) if len(x) > 1 else 0.0)  # noqa: E731
        print(f"{method}: {statistics.mean(before):.1f} +- {sd(before):.1f} -> "
              f"{statistics.mean(after):.1f} +- {sd(after):.1f} over {len(after)} run(s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
