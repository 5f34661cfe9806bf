"""snl's `nlm` against FFmpeg's `nlmeans` on DAVIS 480p: the README's denoising table.

    python scripts/eval_nlm.py --data ../shared/data/davis2016-val-480p \
        --sequences dog,goat,kite-surf --sigmas 20,40 --frames 30 --out runs/eval_nlm.json
    python scripts/eval_nlm.py --table runs/eval_nlm.json

Both methods see the same 8-bit noisy frames (Gaussian noise of the given σ on each RGB
channel, rounded and clipped, seeded). FFmpeg's `nlmeans` runs in this process through
PyAV's filter graph (`snl_cli.peers`) with its strength swept over 0.4–1.0·σ on the first
8 frames and the best kept: its best case with the true σ. `nlm` gets the true σ too.
PSNR is over all frames and RGB channels of the 8-bit outputs; fps is wall-clock for the
whole clip (flows included for nlm), and CPU seconds per frame are reported as well since
they depend less on other work running on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from snl_cli.bench.denoise import add_noise
from snl_cli.console import info, out_console
from snl_cli.metrics import psnr
from snl_cli.nlm import NLMSettings, nlm_denoise
from snl_cli.peers import PEERS, tune
from snl_cli.video import read_frames

SEQUENCES = "dog,goat,kite-surf"


def load(folder: Path, frames: int) -> list[np.ndarray]:
    """The first `frames` frames of a sequence as uint8 RGB (H, W, 3)."""
    out = []
    for frame in read_frames(folder, stop=frames):
        out.append(np.clip(np.rint(frame.rgb * 255.0), 0, 255).astype(np.uint8))
    return out


def run_nlm(noisy: list[np.ndarray], sigma: float, settings: NLMSettings) -> dict:
    video = torch.from_numpy(np.stack(noisy)).permute(0, 3, 1, 2).float().div(255.0)
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = nlm_denoise(video.contiguous(), sigma, settings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    frames = out.permute(0, 2, 3, 1).mul(255.0).round().clamp(0, 255).byte().numpy()
    return {"frames": list(frames), "fps": len(noisy) / wall, "cpu_per_frame": cpu / len(noisy)}


def run_nlmeans(noisy: list[np.ndarray], clean: list[np.ndarray], sigma: float) -> dict:
    cpu = time.process_time()
    result = tune(PEERS["nlmeans"], noisy, clean, sigma)
    cpu = time.process_time() - cpu  # includes the strength sweep on 8 frames x 4
    return {"args": result.args, "psnr": result.psnr, "fps": result.fps, "cpu_total": cpu}


def run(args: argparse.Namespace) -> list[dict]:
    settings = NLMSettings()
    rows = []
    for seq in args.sequences.split(","):
        clean = load(Path(args.data) / seq, args.frames)
        for sigma in (float(s) for s in args.sigmas.split(",")):
            noisy = add_noise(clean, sigma, args.seed)
            ours = run_nlm(noisy, sigma, settings)
            peer = run_nlmeans(noisy, clean, sigma)
            row = {
                "sequence": seq,
                "sigma": sigma,
                "frames": len(clean),
                "size": f"{clean[0].shape[1]}x{clean[0].shape[0]}",
                "noisy_psnr": psnr(noisy, clean),
                "nlm_psnr": psnr(ours["frames"], clean),
                "nlm_fps": ours["fps"],
                "nlm_cpu_s_per_frame": ours["cpu_per_frame"],
                "nlmeans_psnr": peer["psnr"],
                "nlmeans_fps": peer["fps"],
                "nlmeans_args": peer["args"],
                "load_average": os.getloadavg()[0],
            }
            rows.append(row)
            info(
                f"{seq} sigma {sigma:g}: nlm {row['nlm_psnr']:.2f} dB {row['nlm_fps']:.2f} fps, "
                f"nlmeans {row['nlmeans_psnr']:.2f} dB {row['nlmeans_fps']:.2f} fps"
            )
    return rows


def render(rows: list[dict]) -> str:
    """A Markdown table, one row per sequence and σ, then the mean per σ."""
    head = ["sequence", "σ", "noisy", "nlmeans (best s)", "nlm", "Δ", "nlmeans fps", "nlm fps",
            "nlm CPU s/frame"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sigma in sorted({r["sigma"] for r in rows}):
        group = [r for r in rows if r["sigma"] == sigma]
        for r in group:
            strength = r["nlmeans_args"].split(":")[0]
            lines.append(_line(r["sequence"], r, f"{r['nlmeans_psnr']:.2f} ({strength})"))
        mean = {k: float(np.mean([r[k] for r in group])) for k in group[0] if _numeric(group[0][k])}
        lines.append(_line("**mean**", mean, f"{mean['nlmeans_psnr']:.2f}"))
    return "\n".join(lines)


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _line(name: str, r: dict, peer: str) -> str:
    cells = [
        name, f"{r['sigma']:g}", f"{r['noisy_psnr']:.2f}", peer, f"{r['nlm_psnr']:.2f}",
        f"{r['nlm_psnr'] - r['nlmeans_psnr']:+.2f}", f"{r['nlmeans_fps']:.2f}",
        f"{r['nlm_fps']:.2f}", f"{r['nlm_cpu_s_per_frame']:.2f}",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/davis2016-val-480p")
    parser.add_argument("--sequences", default=SEQUENCES)
    parser.add_argument("--sigmas", default="20,40")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON file for the rows")
    parser.add_argument("--table", type=Path, help="only print the table of a JSON file")
    args = parser.parse_args()
    if args.table:
        rows = json.loads(args.table.read_text())
    else:
        rows = run(args)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(rows, indent=1))
    out_console.print(render(rows), markup=False, soft_wrap=True)


if __name__ == "__main__":
    main()
