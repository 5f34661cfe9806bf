"""`snl align` over several DAVIS sequences and noise levels: the README's alignment tables.

    python scripts/align_study.py --data ../shared/data/davis2016-val-480p \
        --sigmas 15,30 --frames 0:6 --sweep-ws 3,5,9,13 --out runs/align_study.json
    python scripts/align_study.py --table runs/align_study.json

One process for every run, so the CPU backend's kernels compile once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from snl_cli.align import METHODS, AlignParams, align_file, border_chance

SEQUENCES = ("bmx-trees", "dog", "horsejump-high", "kite-surf", "paragliding-launch")


def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    sweep = tuple(int(s) for s in args.sweep_ws.split(",") if s)
    for sigma in (float(s) for s in args.sigmas.split(",")):
        for seq in args.sequences.split(","):
            params = AlignParams(
                ws=args.ws, ps=args.ps, sigma=sigma, sweep_ws=sweep, backend=args.backend
            )
            report = align_file(Path(args.data) / seq, params, frames=args.frames)
            report.pop("pairs")
            rows.append({"sequence": seq, **report})
            sys.stderr.write(f"{seq} σ={sigma:g}: {report['verdict']}\n")
    return rows


def render(rows: list[dict]) -> str:
    """Two Markdown tables: per sequence and sigma, then the ws sweep averaged per sigma."""
    head = ["sequence", "σ", *METHODS, "Δ flow", "Δ nls", "flow p50/p90 px", "border nls/shifted"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    sigmas = sorted({row["params"]["sigma"] for row in rows})
    for sigma in sigmas:
        group = [row for row in rows if row["params"]["sigma"] == sigma]
        for row in [*group, _mean_row(group)]:
            s, f, b = row["summary"], row["flow_magnitude"], row["border_hits"]
            cells = [
                row["sequence"],
                f"{sigma:g}",
                *(f"{s[m]:.2f}" for m in METHODS),
                f"{s['shifted_nls'] - s['flow']:+.2f}",
                f"{s['shifted_nls'] - s['nls']:+.2f}",
                f"{f['p50']:.1f}/{f['p90']:.1f}",
                f"{100 * b['nls']:.0f}%/{100 * b['shifted_nls']:.0f}%",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    if rows and rows[0]["sweep"]:
        lines += ["", _sweep_table(rows, sigmas)]
    params = rows[0]["params"] if rows else {}
    lines += ["", f"ws={params.get('ws')}, ps={params.get('ps')}, frames {params.get('frames')}"]
    return "\n".join(lines)


def _mean_row(group: list[dict]) -> dict:
    def mean(key: str, sub: str) -> float:
        return statistics.fmean(row[key][sub] for row in group)

    return {
        "sequence": "**mean**",
        "summary": {m: mean("summary", m) for m in METHODS},
        "flow_magnitude": {p: mean("flow_magnitude", p) for p in ("p50", "p90")},
        "border_hits": {m: mean("border_hits", m) for m in ("nls", "shifted_nls")},
    }


def _sweep_table(rows: list[dict], sigmas: list[float]) -> str:
    head = ["σ", "ws", "nls dB", "shifted_nls dB", "border nls", "border shifted", "chance"]
    head.append("ms shifted")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sigma in sigmas:
        group = [row for row in rows if row["params"]["sigma"] == sigma]
        for i, entry in enumerate(group[0]["sweep"]):
            entries = [row["sweep"][i] for row in group]

            def mean(key: str, entries: list[dict] = entries) -> float:
                return statistics.fmean(e[key] for e in entries)

            cells = [
                f"{sigma:g}",
                str(entry["ws"]),
                f"{mean('nls'):.2f}",
                f"{mean('shifted_nls'):.2f}",
                f"{100 * mean('border_nls'):.0f}%",
                f"{100 * mean('border_shifted_nls'):.0f}%",
                f"{100 * border_chance(entry['ws']):.0f}%",
                f"{mean('ms_shifted_nls'):.0f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/davis2016-val-480p")
    parser.add_argument("--sequences", default=",".join(SEQUENCES))
    parser.add_argument("--sigmas", default="15,30")
    parser.add_argument("--frames", default="0:6")
    parser.add_argument("--ws", type=int, default=9)
    parser.add_argument("--ps", type=int, default=3)
    parser.add_argument("--sweep-ws", default="3,5,9,13")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", default="", help="JSON file to write the rows to")
    parser.add_argument("--table", default="", help="only render this JSON file")
    args = parser.parse_args()
    if args.table:
        sys.stdout.write(render(json.loads(Path(args.table).read_text())) + "\n")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1))
    sys.stdout.write(render(rows) + "\n")


if __name__ == "__main__":
    main()
