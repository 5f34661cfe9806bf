"""FFmpeg's own denoisers, run in-process through PyAV's filter graph: the peers we measure.

Frames go through the filters as planar RGB (gbrp), the noise being independent per RGB
channel. Each filter's strength lives on its own scale, so `tune` sweeps a few values around
the rule of thumb for the true sigma (its best case) and keeps the best by PSNR. For noise
with no single sigma (camera noise, real pairs) `tune(..., sigma=None)` sweeps each filter's
whole useful range instead (`Peer.wide`, coarse then refined around the best).

Beside FFmpeg, `opencv-nlm` is a still-image peer: OpenCV's `fastNlMeansDenoisingColored`,
with separate luma and chroma strengths (h, hColor), both swept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from snl_cli.metrics import psnr

Frames = Sequence[np.ndarray]


@dataclass(frozen=True)
class Peer:
    """One FFmpeg denoiser: how its options depend on a strength multiplier times sigma."""

    name: str
    filter: str
    options: Callable[[float], str]
    factors: tuple[float, ...]
    limit: float
    wide: tuple[float, ...] = ()  # absolute strengths swept when no sigma is known

    def args(self, sigma: float, factor: float) -> str:
        return self.options(float(np.clip(factor * sigma, 0.5, self.limit)))

    def apply(self, args: str, frames: Frames) -> list[np.ndarray]:
        """The filter with these options over uint8 RGB frames (H, W, 3)."""
        if self.filter == "opencv-nlm":
            return opencv_nlm(args, frames)
        return run_filter(self.filter, args, frames)


_WIDE = (1.0, 2.0, 3.0, 4.5, 6.5, 9.0, 13.0, 18.0, 25.0, 35.0, 50.0, 70.0, 90.0)


def opencv_nlm(args: str, frames: Frames) -> list[np.ndarray]:
    """OpenCV's still-image non-local means; args "h=H:hc=HC" (luma, chroma strengths)."""
    import cv2

    opts = dict(part.split("=") for part in args.split(":"))
    h, hc = float(opts["h"]), float(opts["hc"])
    return [
        cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(f), None, h, hc, 7, 21) for f in frames
    ]


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer(
            "nlmeans",
            "nlmeans",
            lambda s: f"s={s:.2f}:p=7:r=15",
            (0.4, 0.6, 0.8, 1.0),
            30,
            tuple(v for v in _WIDE if v <= 30),
        ),
        Peer(
            "bm3d",
            "bm3d",
            lambda s: f"sigma={s:.2f}:block=16:bstep=4:group=1:estim=basic",
            (2.5, 3.5, 4.5),
            999,
            _WIDE,
        ),
        Peer("fftdnoiz", "fftdnoiz", lambda s: f"sigma={s:.2f}", (4.0, 5.0, 6.0), 100, _WIDE),
        Peer(
            "fftdnoiz-t",
            "fftdnoiz",
            lambda s: f"sigma={s:.2f}:prev=1:next=1",
            (3.0, 4.0, 5.0),
            100,
            _WIDE,
        ),
        Peer("dctdnoiz", "dctdnoiz", lambda s: f"sigma={s:.2f}", (1.0, 1.5, 2.0), 999, _WIDE),
        Peer(
            "opencv-nlm",
            "opencv-nlm",
            lambda s: f"h={s:.2f}:hc={s:.2f}",
            (0.4, 0.6, 0.8),
            100,
            tuple(v for v in _WIDE if v <= 50),
        ),
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
    noisy: Frames,
    clean: Frames,
    sigma: float | None,
    tune_frames: int = 8,
) -> PeerResult:
    """Pick the strength with the best PSNR on the first frames, then run the whole clip.

    With a sigma, the peer's factors times sigma are tried; with None (no single noise
    level), its whole `wide` range, then the geometric midpoints beside the best; OpenCV's
    peer also tries its chroma strength at 2x its luma strength.
    """
    sub_noisy, sub_clean = noisy[:tune_frames], clean[:tune_frames]
    scores: dict[str, float] = {}

    def score(args: str) -> float:
        if args not in scores:
            scores[args] = psnr(peer.apply(args, sub_noisy), sub_clean)
        return scores[args]

    if sigma is not None:
        args = max((peer.args(sigma, f) for f in peer.factors), key=score)
    else:
        grid = list(peer.wide)
        values = [peer.options(v) for v in grid]
        best = max(range(len(grid)), key=lambda i: score(values[i]))
        near = [grid[best]]
        if best > 0:
            near.append((grid[best - 1] * grid[best]) ** 0.5)
        if best + 1 < len(grid):
            near.append((grid[best + 1] * grid[best]) ** 0.5)
        tried = [peer.options(v) for v in near]
        if peer.filter == "opencv-nlm":
            tried += [f"h={v:.2f}:hc={2 * v:.2f}" for v in near]
        args = max(tried, key=score)
    start = time.perf_counter()
    frames = peer.apply(args, noisy)
    seconds = time.perf_counter() - start
    return PeerResult(peer.name, args, psnr(frames, clean), len(frames) / seconds, frames)
