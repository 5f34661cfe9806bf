"""Before/after picture of a real noisy image for the README: noisy | snl | best FFmpeg | clean.

Usage: python scripts/real_noise_figure.py PAIRS_FOLDER NAME OUT.png [--crop Y,X,SIZE]
The FFmpeg peer is bm3d with its strength swept per image (best PSNR, as `snl bench pairs`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from snl_cli.bench.pairs import _denoise_image
from snl_cli.metrics import psnr
from snl_cli.pairs import read_image
from snl_cli.peers import PEERS, tune


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("name")
    parser.add_argument("out", type=Path)
    parser.add_argument("--crop", default="128,128,256")
    args = parser.parse_args()
    noisy = read_image(args.folder / "noisy" / args.name)
    clean = read_image(args.folder / "clean" / args.name)
    with tempfile.TemporaryDirectory() as tmp:
        ours, _ = _denoise_image("stan", noisy, Path(tmp))
    peer = tune(PEERS["bm3d"], [noisy], [clean], None)
    y, x, size = (int(v) for v in args.crop.split(","))
    panels = [
        ("noisy", noisy, psnr([noisy], [clean])),
        ("snl (blind, 8 passes)", ours, psnr([ours], [clean])),
        (f"bm3d best ({peer.args.split(':')[0]})", peer.frames[0], peer.psnr),
        ("clean (mean of ~500 shots)", clean, None),
    ]
    tiles = []
    for label, image, score in panels:
        tile = np.ascontiguousarray(image[y : y + size, x : x + size][..., ::-1])
        tile = cv2.resize(tile, (2 * size, 2 * size), interpolation=cv2.INTER_NEAREST)
        text = label + (f"  {score:.2f} dB" if score is not None else "")
        cv2.rectangle(tile, (0, 0), (2 * size, 26), (0, 0, 0), -1)
        cv2.putText(tile, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
        tiles.append(tile)
    cv2.imwrite(str(args.out), np.hstack(tiles))
    print(args.out, [(p[0], p[2]) for p in panels])


if __name__ == "__main__":
    main()
