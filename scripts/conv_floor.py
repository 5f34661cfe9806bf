"""How fast can the shipped STAN be on this CPU? The convolutions alone, timed.

Counts the convolution FLOPs of one frame (torch's FlopCounterMode: the encoder, the two
attention blocks' projections and FFNs, the decoder) and times exactly those layers on one
frame as `snl denoise` runs them (channels-last, bfloat16 autocast where the CPU has native
bf16, `torch.inference_mode`), median of REPEATS. The search, the attention kernels, the
flows, decoding and encoding all come on top, so 1 / (this time) is a ceiling on the
end-to-end fps of the model. Run from the repository root on an idle machine:
`python scripts/conv_floor.py [--size 960x540] [--weights W]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from snl_cli.denoisers import bf16_supported
from snl_cli.model.weights import load_stan

REPEATS = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="960x540", help="frame size WxH")
    parser.add_argument("--weights", default=None, help="STAN weights (default: shipped)")
    args = parser.parse_args()
    W, H = (int(v) for v in args.size.lower().split("x"))
    model, _ = load_stan(args.weights)
    model = model.eval().to(memory_format=torch.channels_last)
    cfg = model.cfg
    s = cfg.scale
    H, W = -(-H // s) * s, -(-W // s) * s  # padded as the stream pads
    planes = 3 * cfg.input_frames + int(cfg.level_input)
    x = torch.rand(1, planes, H, W).contiguous(memory_format=torch.channels_last)
    bf16 = bf16_supported(torch.device("cpu"))

    def convs() -> None:
        bottom, skips = model._encode_stacked(x)
        for block in model.attn:
            y = block.norm(bottom)
            block.to_qk(y)
            bottom = block._finish(bottom, block.to_v(y))  # proj + FFN, as after attention
        model._decode(bottom, skips)

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        with FlopCounterMode(display=False) as counter:
            convs()
        flops = counter.get_total_flops()
        convs()  # warm-up: oneDNN picks and caches its kernels
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            convs()
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    rate = flops / seconds / 1e9
    print(
        f"{W}x{H}, {torch.get_num_threads()} threads, bf16 {bf16}: {flops / 1e9:.1f} GFLOP of "
        f"convolutions per frame in {seconds * 1000:.0f} ms ({rate:.0f} GFLOP/s): at most "
        f"{1 / seconds:.2f} fps end to end"
    )


if __name__ == "__main__":
    main()
