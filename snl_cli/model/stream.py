"""STAN inference one frame at a time: what `snl denoise` runs on the CPU.

`STAN.forward` takes a window of frames and holds every intermediate of every frame in it
(~400 bytes per pixel and frame), so long windows are tiled to fit and the frames at a
window's edges are computed twice. `STANStream` computes the same outputs as one forward
over the whole clip, as soon as they are determined, holding only what later outputs still
need: each frame is encoded once, each attention block runs once per frame over the frames
of that frame's temporal window (a search of one query frame, `shifted_nls(queries=...)`),
and each frame is decoded once, as soon as the last block has run on it.

For the shipped model (5 input frames, 2 blocks, wt 1) the output of frame t is written once
frame t+4 has been read (t+6 near the clip's end, where windows slide inward); it holds the
inputs of about 7 frames, the skip tensors of 3 and the 1/4-resolution features, matches
and projections of a few, whatever the clip's length: 0.83 GB at 1920x1080 (~400 bytes per
pixel of one frame), where a chunk window took ~400 bytes per pixel of each of its frames.

Frames arrive through `push` and the clip ends with `close`; both return the outputs that
became ready, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from snl_cli.flow import estimate_flows
from snl_cli.model.stan import STAN, STANConfig, attention_path, photo_matches
from snl_cli.search import accumulate_flows, shifted_nls
from snl_cli.search.spec import SearchSpec


@dataclass
class _Block:
    """One attention block's per-frame state: input features, projections, outputs."""

    x: dict[int, Tensor] = field(default_factory=dict)  # (1, C, h, w) block inputs
    qk: dict[int, Tensor] = field(default_factory=dict)  # (1, 2*heads*qk, h, w)
    v: dict[int, Tensor] = field(default_factory=dict)  # (1, C, h, w)
    done: int = 0  # frames this block has run on (its next query frame)


class STANStream:
    """Runs `model` over a clip pushed one frame at a time.

    Args:
        model: a STAN in eval mode, on the CPU, whose attention takes the fused CPU path.
        level: the clip's noise level (0-255), read only by a model with `level_input`.
        flows: estimate DIS flows between consecutive frames (as `StanDenoiser` does);
            False runs the search without offsets (as `STAN.forward` without flows).
        bf16: run the convolutions under bfloat16 autocast (as `StanDenoiser` does).
        focus: (frame, frames): compute only what the output of that frame of a clip of
            `frames` frames depends on (`snl preview`); the other outputs come out as None.

    Shape:
        push(frame (3, H, W) float in [0, 1]) and close() -> list of (3, H, W) outputs.
    """

    def __init__(
        self,
        model: STAN,
        level: float = 0.0,
        flows: bool = True,
        bf16: bool = False,
        focus: tuple[int, int] | None = None,
    ) -> None:
        self.model, self.cfg, self.bf16 = model, model.cfg, bf16
        self.needed = None if focus is None else needed_frames(self.cfg, focus[1], focus[0])
        self.frames = None if focus is None else focus[1]
        self.level = torch.tensor([float(level)]) if self.cfg.level_input else None
        self.flows = flows and self.cfg.attn_blocks > 0 and self.cfg.wt > 0
        self.inputs: dict[int, Tensor] = {}  # (1, 3, Hp, Wp) padded, channels-last
        self.raw: dict[int, Tensor] = {}  # (3, H, W) as pushed, for the next pair's flow
        self.fflow: dict[int, Tensor] = {}  # (2, h, w) at the attention's resolution
        self.bflow: dict[int, Tensor] = {}
        self.skips: dict[int, list[Tensor]] = {}
        self.blocks = [_Block() for _ in range(self.cfg.attn_blocks + 1)]  # + the last output
        self.inds: dict[int, Tensor] = {}  # block 0's matches, reused by the later blocks
        self.received = 0
        self.encoded = 0
        self.decoded = 0
        self.ended = False
        self.size: tuple[int, int] | None = None
        self._stack: Tensor | None = None  # the first convolution's input, reused

    # --- frames in, frames out ------------------------------------------------------------

    def push(self, frame: Tensor) -> list[Tensor | None]:
        """Take the next frame; return the outputs it completes."""
        with self._running():
            return self._push(frame)

    def close(self) -> list[Tensor | None]:
        """End the clip; return the outputs still to come."""
        with self._running():
            if self.frames is not None and self.received != self.frames:
                raise ValueError(f"the clip has {self.received} frames, not the {self.frames} "
                                 "its focus was computed for")  # fmt: skip
            if not self.ended:
                self.ended = True
                if self.flows and self.received:
                    self.fflow[self.received - 1] = self._zero_flow()
                    self.raw.clear()
            return self._advance()

    @contextmanager
    def _running(self) -> Iterator[None]:
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16),
        ):
            assert attention_path(torch.device("cpu"), "cpu") == "fused"
            yield

    def _push(self, frame: Tensor) -> list[Tensor | None]:
        if self.ended:
            raise RuntimeError("push after close")
        frame = frame.float()
        if self.size is None:
            self.size = (frame.shape[-2], frame.shape[-1])
        elif tuple(frame.shape[-2:]) != self.size:
            raise ValueError(f"frame {self.received}: size {tuple(frame.shape[-2:])}, "
                             f"expected {self.size}")  # fmt: skip
        t = self.received
        H, W = self.size
        s = self.cfg.scale
        padded = F.pad(frame.unsqueeze(0), (0, (-W) % s, 0, (-H) % s), mode="reflect")
        self.inputs[t] = padded.contiguous(memory_format=torch.channels_last)
        if self.flows:
            if t == 0:
                self.bflow[0] = self._zero_flow()
            else:
                self._pair_flow(t - 1, frame)
            self.raw[t] = frame
        self.received += 1
        return self._advance()

    # --- the schedule ---------------------------------------------------------------------

    def _advance(self) -> list[Tensor | None]:
        out = []
        progress = True
        while progress:
            progress = self._encode_next()
            for b in range(self.cfg.attn_blocks):
                progress |= self._attend_next(b)
            last = self.blocks[-2].done if self.cfg.attn_blocks else self.encoded
            if self.decoded < last:  # the last level has passed the next frame to decode
                out.append(self._decode_next())
                progress = True
        return out

    def _wanted(self, level: int, t: int) -> bool:
        """Whether frame t's features at `level` (0: the encoder's; b + 1: block b's) are
        computed: always, or with a focus, when its output depends on them."""
        return self.needed is None or t in self.needed[level]

    def _window(self, t: int) -> list[int] | None:
        """Frames of t's temporal search window (`SearchSpec.window` of the whole clip), or
        None while the clip may still be too short to tell."""
        wt = self.cfg.wt
        if self.ended:
            total = self.received
        elif max(t + wt, 2 * wt) < self.received:
            total = self.received  # any length from here on gives the same window
        else:
            return None
        return SearchSpec(B=1, T=total, C=1, H=2, W=2, wt=wt).window(t)

    def _encode_next(self) -> bool:
        t, r = self.encoded, self.cfg.input_frames // 2
        if not (t < self.received and (self.ended or t + r < self.received)):
            return False
        if not self._wanted(0, t):
            self.encoded += 1
            self._forget_inputs()
            return True
        last = self.received - 1
        stack = [self.inputs[min(max(i, 0), last)] for i in range(t - r, t + r + 1)]
        if self.level is not None:
            stack.append(self.model.level_plane(self.level, stack[0]))
        bottom, skips = self.model._encode_stacked(self._stacked(stack))
        self.blocks[0].x[t] = bottom
        self.skips[t] = skips
        self.encoded += 1
        self._forget_inputs()
        return True

    def _stacked(self, planes: list[Tensor]) -> Tensor:
        """planes (1, c_i, Hp, Wp) copied into the one channels-last stack the first
        convolution reads, in the dtype it computes in (bf16 under autocast: the conversion
        it would make itself), reusing the same buffer every frame: at 1920x1080 a fresh
        float32 stack and its bf16 copy were 200 MB of new pages per frame for the kernel to
        fault in and zero."""
        dtype = torch.get_autocast_dtype("cpu") if self.bf16 else torch.float32
        channels = sum(p.shape[1] for p in planes)
        shape = (1, channels, *planes[0].shape[-2:])
        if self._stack is None or self._stack.shape != shape or self._stack.dtype != dtype:
            self._stack = torch.empty(shape, dtype=dtype, memory_format=torch.channels_last)
        at = 0
        for plane in planes:
            self._stack[:, at : at + plane.shape[1]].copy_(plane)
            at += plane.shape[1]
        return self._stack

    def _attend_next(self, b: int) -> bool:
        block, state, after = self.model.attn[b], self.blocks[b], self.blocks[b + 1]
        t = state.done
        if t < self.received and not self._wanted(b + 1, t):
            state.done += 1
            return True
        window = self._window(t) if t < self.received else None
        if window is None or any(f not in state.x for f in window):
            return False
        for f in window:
            if f not in state.qk:
                y = block.norm(state.x[f])
                state.qk[f] = block.to_qk(y)  # as computed (bf16 under autocast): half the bytes
                state.v[f] = block.to_v(y)
        qk = torch.cat([state.qk[f] for f in window])
        v = torch.cat([state.v[f] for f in window])
        at = window.index(t)
        dists = None
        if b == 0:
            dists, self.inds[t] = self._search(qk, window, at)
        out = block._aggregate_fused(qk, v, self.inds[t], dists, first=at)
        after.x[t] = block._finish(state.x[t], out)
        state.done += 1
        if b == self.cfg.attn_blocks - 1:
            self.inds.pop(t, None)
        # later windows start at most 2·wt frames before their query (at the clip's end)
        for f in [f for f in state.x if f < state.done - 2 * self.cfg.wt]:
            for table in (state.x, state.qk, state.v):
                table.pop(f, None)
            if b == 0:
                self.fflow.pop(f, None)
                self.bflow.pop(f, None)
        return True

    def _search(self, qk: Tensor, window: list[int], at: int) -> tuple[Tensor, Tensor]:
        """Block 0's search for the queries of window[at] in the window's frames."""
        cfg = self.cfg
        n, _, h, w = qk.shape
        q, k = qk.float().contiguous().reshape(1, n, 2, -1, h, w).unbind(2)
        offsets = None
        if self.flows and n > 1:
            # the chains from window[at] never read the last frame's fflow (it may not be
            # known yet) nor the first frame's bflow
            zero = self._zero_flow()
            fflow = torch.stack([self.fflow.get(f, zero) for f in window]).unsqueeze(0)
            bflow = torch.stack([self.bflow.get(f, zero) for f in window]).unsqueeze(0)
            chained = accumulate_flows(fflow, bflow, cfg.wt, backend="torch")
            offsets = torch.round(chained[:, at : at + 1])
        copies = self.model.photo_copies(self.received) if self.ended else 1

        def search(topk: int) -> tuple[Tensor, Tensor]:
            return shifted_nls(
                q.contiguous(), k.contiguous(), offsets, ws=cfg.ws, wt=cfg.wt, ps=1, topk=topk,
                stride0=1, heads=cfg.heads, queries=(at, at + 1), backend="cpu",
            )  # fmt: skip

        return photo_matches(search, min(cfg.topk, n * copies * cfg.ws**2), copies)

    def _decode_next(self) -> Tensor | None:
        t = self.decoded
        if t not in self.blocks[-1].x:  # not in focus
            self.skips.pop(t, None)
            self.decoded += 1
            self._forget_inputs()
            return None
        bottom = self.blocks[-1].x.pop(t)
        skips = self.skips.pop(t)
        out = self.inputs[t] + self.model._decode(bottom, skips)
        self.decoded += 1
        self._forget_inputs()
        H, W = self.size
        return out[0, :, :H, :W].float().clamp(0, 1)

    def _forget_inputs(self) -> None:
        """Drop the inputs no later encoding or residual reads."""
        r = self.cfg.input_frames // 2
        keep = min(self.decoded, self.encoded - r)
        for f in [f for f in self.inputs if f < keep]:
            del self.inputs[f]

    # --- motion ---------------------------------------------------------------------------

    def _pair_flow(self, t: int, frame: Tensor) -> None:
        """The flows between frames t and t+1 (`frame`), as `StanDenoiser` estimates them
        for the whole clip, pooled to the attention's resolution as `STAN.offsets` does."""
        fflow, bflow = estimate_flows(
            torch.stack([self.raw.pop(t), frame]), downscale=self.model.flow_downscale
        )
        self.fflow[t] = self._pool(fflow[0])
        self.bflow[t + 1] = self._pool(bflow[1])

    def _pool(self, flow: Tensor) -> Tensor:
        """(2, H, W) full-resolution flow -> (2, h, w) at the attention's resolution."""
        return self.model.pool_flows(flow[None, None])[0, 0].float()

    def _zero_flow(self) -> Tensor:
        H, W = self.size
        s = self.cfg.scale
        return torch.zeros(2, -(-H // s), -(-W // s))


def needed_frames(cfg: STANConfig, frames: int, focus: int) -> list[set[int]]:
    """The frames whose features the output at `focus` depends on, in a clip of `frames`
    frames, per level (0: the encoder's output, b + 1: attention block b's): block b at query
    q reads the level-b features of q's temporal window (`SearchSpec.window`)."""
    if not 0 <= focus < frames:
        raise ValueError(f"focus: expected a frame in [0, {frames}), got {focus}")
    spec = SearchSpec(B=1, T=frames, C=1, H=2, W=2, wt=cfg.wt)
    levels = [{focus}]
    for _ in range(cfg.attn_blocks):
        levels.insert(0, {f for q in levels[0] for f in spec.window(q)})
    return levels
