"""FFmpeg's own denoisers, run in-process through PyAV's filter graph: the peers we measure.

Frames go through the filters as planar RGB (gbrp), the noise being independent per RGB
channel. Each filter's strength lives on its own scale, so `tune` sweeps a few values around
the rule of thumb for the true sigma (its best case) and keeps the best by PSNR.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from snl_cli.metrics import psnr


@dataclass(frozen=True)
class Peer:
    """One FFmpeg denoiser: how its options depend on a strength multiplier times sigma."""

    name: str
    filter: str
    options: Callable[[float], str]
    factors: tuple[float, ...]
    limit: float

    def args(self, sigma: float, factor: float) -> str:
        return self.options(float(np.clip(factor * sigma, 0.5, self.limit)))


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer("nlmeans", "nlmeans", lambda s: f"s={s:.2f}:p=7:r=15", (0.4, 0.6, 0.8, 1.0), 30),
        Peer(
            "bm3d",
            "bm3d",
            lambda s: f"sigma={s:.2f}:block=16:bstep=4:group=1:estim=basic",
            (2.5, 3.5, 4.5),
            999,
        ),
        Peer("fftdnoiz", "fftdnoiz", lambda s: f"sigma={s:.2f}", (4.0, 5.0, 6.0), 100),
        Peer(
            "fftdnoiz-t", "fftdnoiz", lambda s: f"sigma={s:.2f}:prev=1:next=1", (3.0, 4.0, 5.0), 100
        ),
        Peer("dctdnoiz", "dctdnoiz", lambda s: f"sigma={s:.2f}", (1.0, 1.5, 2.0), 999),
    )
}


def run_filter(filter_name: str, args: str, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Apply one FFmpeg filter to uint8 RGB frames (H, W, 3); returns as many frames."""
    height, width = frames[0].shape[:2]
    tb = Fraction(1, 25)
    graph = av.filter.Graph()
    src = graph.add_buffer(width=width, height=height, format="gbrp", time_base=tb)
    node = graph.add(filter_name, args)
    sink = graph.add("buffersink")
    src.link_to(node)
    node.link_to(sink)
    graph.configure()
    out: list[np.ndarray] = []

    def drain() -> None:
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            out.append(frame.to_ndarray(format="rgb24"))

    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format="gbrp")
        frame.pts, frame.time_base = i, tb
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return out


@dataclass
class PeerResult:
    name: str
    args: str
    psnr: float
    fps: float
    frames: list[np.ndarray]


def tune(
    peer: Peer,
    noisy: Sequence[np.ndarray],
    clean: Sequence[np.ndarray],
    sigma: float,
    tune_frames: int = 8,
) -> PeerResult:
    """Pick the strength with the best PSNR on the first frames, then run the whole clip."""
    sub_noisy, sub_clean = noisy[:tune_frames], clean[:tune_frames]
    best = max(
        peer.factors,
        key=lambda f: psnr(run_filter(peer.filter, peer.args(sigma, f), sub_noisy), sub_clean),
    )
    args = peer.args(sigma, best)
    start = time.perf_counter()
    frames = run_filter(peer.filter, args, noisy)
    seconds = time.perf_counter() - start
    return PeerResult(peer.name, args, psnr(frames, clean), len(frames) / seconds, frames)
