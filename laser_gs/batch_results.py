"""``laser batch``'s results: the summary per method (mean +- sd over runs), results.json, results.csv and
report.html."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import Any

RESULTS_JSON, RESULTS_CSV, REPORT = "results.json", "results.csv", "report.html"


def mean_sd(values: list[float | None]) -> str:
    """``"mean +- sd"`` of the numbers among ``values`` (None and NaN left out: a lift has no label head)."""
    values = [v for v in values if v is not None and v == v]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} +- {sd:.1f}"


def summary_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """Per method: runs, failed, mIoU mean +- sd, worst, gain over the teacher, PSNR, train minutes."""
    rows = []
    for method in dict.fromkeys(r["method"] for r in results):
        rs = [r for r in results if r["method"] == method and r["status"] == "ok"]
        failed = sum(1 for r in results if r["method"] == method and r["status"] != "ok")
        scored = [r for r in rs if r.get("miou") is not None]
        worst = min(scored, key=lambda r: r["miou"]) if scored else None
        rows.append([method, str(len(rs)), str(failed), mean_sd([r["miou"] for r in scored]),
                     f"{worst['miou']:.1f} ({worst['scene']})" if worst else "-",
                     mean_sd([r["miou"] - r["teacher_miou"] for r in scored if r.get("teacher_miou") is not None]),
                     mean_sd([r["psnr"] for r in rs]), mean_sd([r["train_s"] / 60 for r in rs])])
    return rows


SUMMARY_HEADER = ["method", "runs", "failed", "mIoU mean +- sd", "worst", "gain over teacher", "PSNR dB",
                  "train min"]


def write_outputs(results: list[dict[str, Any]], out: Path) -> list[Path]:
    """``results.json``, ``results.csv`` (one row per run) and ``report.html`` (summary and per-run tables)."""
    from laser_gs.atomic import atomic_write_text
    from laser_gs.report import Report

    out = Path(out)
    atomic_write_text(out / RESULTS_JSON, json.dumps(results, indent=2))
    cols = ["name", "scene", "method", "seed", "status", "miou", "accuracy", "teacher_miou", "label_miou", "psnr",
            "train_s", "lift_s", "error"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    for r in results:
        writer.writerow({k: r.get(k, "") for k in cols})
    atomic_write_text(out / RESULTS_CSV, buf.getvalue())
    rep = Report("laser batch", meta=f"{len(results)} runs in {out}")
    rep.heading("Summary (mean +- standard deviation over runs)")
    rep.table(SUMMARY_HEADER, summary_rows(results))
    rep.heading("Runs")
    rep.table(["run", "status", "mIoU %", "teacher %", "PSNR dB", "train min", "error"],
              [[r["name"], r["status"], r.get("miou", "-"), r.get("teacher_miou", "-"), r.get("psnr", "-"),
                r.get("train_s", 0) / 60 if r.get("train_s") else "-", r.get("error", "")] for r in results])
    rep.write(out / REPORT)
    return [out / RESULTS_JSON, out / RESULTS_CSV, out / REPORT]
