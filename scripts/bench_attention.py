#!/usr/bin/env python
"""Transient query attention vs vanilla attention on CPU: time and peak memory against S points.

Each measurement runs in a fresh subprocess so its peak resident memory (ru_maxrss minus the
baseline after creating the inputs) is its own. Vanilla attention is skipped, and reported as
out of memory, once its S x S score matrix alone would exceed --vanilla-cap-gb.

    python scripts/bench_attention.py            # full: S up to 500,000, D = 512
    python scripts/bench_attention.py --quick    # CI-sized
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time, torch
from laser_gs.semantics import TransientQueryAttention, vanilla_attention
method, S, D, E = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
x = torch.randn(S, D)
tqa = TransientQueryAttention(D, embed_dim=E, out_dim=D)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.no_grad():
    t0 = time.perf_counter()
    if method == "transient":
        y = tqa(x, chunk=65536)
    else:
        y = tqa.decode(vanilla_attention(tqa.query(x), tqa.key(x), tqa.value(x)) + tqa.query(x))
    dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"seconds": dt, "peak_mb": peak / 1024, "out_shape": list(y.shape)}))
"""


def measure(method: str, S: int, D: int, E: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, method, str(S), str(D), str(E)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes only (for CI)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--embed-dim", type=int, default=48)
    ap.add_argument("--vanilla-cap-gb", type=float, default=4.0)
    ap.add_argument("--json", default=None, help="write results here")
    args = ap.parse_args()
    sizes = [1000, 4000, 16000] if args.quick else [1000, 4000, 16000, 32000, 64000, 128000, 500000]
    rows = []
    for S in sizes:
        row = {"S": S, "D": args.dim, "E": args.embed_dim, "s": 3 * args.embed_dim}
        row["transient"] = measure("transient", S, args.dim, args.embed_dim)
        need_gb = S * S * 4 / 1e9
        row["vanilla"] = (measure("vanilla", S, args.dim, args.embed_dim) if need_gb <= args.vanilla_cap_gb
                          else {"skipped": f"out of memory budget: S x S scores need {need_gb:.0f} GB"})
        rows.append(row)
        v = row["vanilla"]
        vtxt = (f"{v['seconds'] * 1e3:9.1f} ms {v['peak_mb']:8.0f} MB" if "seconds" in v else v["skipped"])
        t = row["transient"]
        print(f"S={S:>7}  transient {t['seconds'] * 1e3:9.1f} ms {t['peak_mb']:8.0f} MB   vanilla {vtxt}", flush=True)
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "date": time.strftime("%Y-%m-%d"), "rows": rows}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
