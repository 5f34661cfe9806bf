"""STAN: a UNet whose bottleneck attention finds its keys with Shifted Non-Local Search.

Scaled from the paper's network (channels 16/64/192, 12 heads, four attention blocks) to what
trains and runs on a laptop CPU; the structure is kept: per-frame convolutional encoder and
decoder, attention at 1/4 resolution whose first block searches a ws x ws window around the
flow-predicted position in the neighbouring frames and whose later blocks refine (re-score
the same locations with their own queries and keys), aggregation of the k_agg best matches
with a learned combination across ranks and channels, and a global residual. Blind; a model
with `level_input` is also shown one constant input plane, the noise level that
`snl_cli.noise.estimate_sigma` reads from the noisy clip itself (or a level the user gives).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snl_cli.model.blocks import LayerNorm2d, ResBlock, down, up
from snl_cli.search import accumulate_flows, backend_name, gather, shifted_nls

LEVEL_SCALE = 50.0  # a level plane holds sigma (0-255 scale) / LEVEL_SCALE


@dataclass(frozen=True)
class STANConfig:
    """Architecture hyper-parameters (stored in the weights manifest)."""

    channels: tuple[int, ...] = (16, 32, 64)
    heads: int = 4
    qk_dim: int = 8
    attn_blocks: int = 2
    ws: int = 9
    wt: int = 1
    topk: int = 20
    k_agg: int = 10
    input_frames: int = 1  # frames t-r..t+r stacked at the input (early fusion), n = 2r+1
    level_input: bool = False  # one more input plane: the noise level / LEVEL_SCALE
    depth: tuple[int, ...] = ()  # ResBlocks per level (encoder and decoder; the last: the
    # bottleneck); () = one each

    def blocks(self, level: int) -> int:
        """ResBlocks at `level` (0 = full resolution, the last = the bottleneck)."""
        return self.depth[level] if self.depth else 1

    @property
    def context(self) -> int:
        """Frames each side of t that the output at t depends on: the input stack's reach, plus
        wt per attention block (each block re-reads features that already looked wt away)."""
        return self.input_frames // 2 + self.attn_blocks * self.wt

    def to_dict(self) -> dict:
        data = {**asdict(self), "channels": list(self.channels), "depth": list(self.depth)}
        for name in ("level_input", "depth"):  # manifests written before these stay as they were
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> STANConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown STAN config keys: {sorted(unknown)}")
        values = dict(data)
        for name in ("channels", "depth"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    @property
    def scale(self) -> int:
        """Down-sampling factor of the bottleneck (where attention runs)."""
        return 2 ** (len(self.channels) - 1)


def match_dists(q: Tensor, k: Tensor, inds: Tensor, heads: int, backend: str = "auto") -> Tensor:
    """Squared l2 distance between each query and its matches, differentiable in q and k.

    Args:
        q, k: (B, T, heads*Ch, h, w).
        inds: (B, heads, T, h, w, K, 3) absolute match positions.

    Returns:
        (B, heads, T, h, w, K).
    """
    B, T, C, h, w = q.shape
    keys = gather(k, inds, backend=backend)  # (B, heads, T, K, Ch, h, w)
    queries = q.reshape(B, T, heads, C // heads, h, w).transpose(1, 2).unsqueeze(3)
    return (queries - keys).pow(2).sum(4).permute(0, 1, 2, 4, 5, 3)


def attention_path(device: torch.device, backend: str) -> str:
    """How an attention block aggregates its matches, for tensors on `device`:

    "train": autograd is on; distances recomputed through `gather` so q and k get gradients.
    "fused": CPU inference under the "cpu" search backend: one numba kernel per block
        (`snl_cli.model.attend_cpu`), reading the projections as they are.
    "frames": any other inference: torch, one query frame at a time (bounded memory).
    """
    if torch.is_grad_enabled():
        return "train"
    if device.type == "cpu" and backend_name(backend, device) == "cpu":
        return "fused"
    return "frames"


def photo_matches(
    search: Callable[[int], tuple[Tensor, Tensor]], topk: int, copies: int
) -> tuple[Tensor, Tensor]:
    """The `topk` matches a search in `copies` identical copies of one frame finds, from
    `search(k)` (dists (..., k), inds (..., k, 3)) in the frame alone: each of its best
    ceil(topk / copies) matches `copies` times in a row, as the copies' ties rank them."""
    dists, inds = search(-(-topk // copies))
    dists = dists.repeat_interleave(copies, dim=-1)[..., :topk]
    return dists, inds.repeat_interleave(copies, dim=-2)[..., :topk, :]


class ShiftedNLSAttention(nn.Module):
    """One attention block: norm, q/k/v projections, search or refine, aggregate, residual.

    Shape:
        x: (B*T, C, h, w); offsets: (B, T, Wn, 2, h, w) or None; inds: (B, heads, T, h, w,
        topk, 3) from the previous block, or None to search. Returns x of the same shape and
        the inds used.
    """

    def __init__(self, cfg: STANConfig, dim: int) -> None:
        super().__init__()
        if dim % cfg.heads:
            raise ValueError(f"channels {dim} not divisible by heads {cfg.heads}")
        self.cfg = cfg
        self.norm = LayerNorm2d(dim)
        self.to_qk = nn.Conv2d(dim, 2 * cfg.heads * cfg.qk_dim, 1)
        self.to_v = nn.Conv2d(dim, dim, 1)
        self.log_scale = nn.Parameter(torch.full((cfg.heads,), -math.log(cfg.qk_dim)))
        ch = dim // cfg.heads
        mix = torch.zeros(cfg.heads, ch, cfg.k_agg, ch)
        mix[:, :, 0] = torch.eye(ch)  # start as "take the weighted best match"
        self.mix = nn.Parameter(mix + 0.01 * torch.randn_like(mix))
        self.proj = nn.Conv2d(dim, dim, 1)
        self.ffn = ResBlock(dim)

    def forward(
        self,
        x: Tensor,
        batch: int,
        offsets: Tensor | None,
        inds: Tensor | None,
        backend: str,
        copies: int = 1,
    ) -> tuple[Tensor, Tensor]:
        """`copies` > 1 (a photo, T = 1): matched as that many copies of its frame."""
        cfg = self.cfg
        BT, C, h, w = x.shape
        T = BT // batch
        y = self.norm(x)
        qk, v = self.to_qk(y), self.to_v(y)
        path = attention_path(x.device, backend)
        if path == "fused" and inds is not None:  # a refining block reads q, k, v as they are
            out = self._aggregate_fused(qk, v, inds, None)
            return self._finish(x, out), inds
        # standard (not channels-last) layout once here: the search and gathers read it as is
        q, k = qk.float().contiguous().reshape(batch, T, 2, -1, h, w).unbind(2)
        dists = None
        if inds is None:
            frames = min(2 * cfg.wt + 1, T) * copies

            def search(topk: int) -> tuple[Tensor, Tensor]:
                return shifted_nls(
                    q.detach(), k.detach(), offsets, ws=cfg.ws, wt=cfg.wt, ps=1, topk=topk,
                    stride0=1, heads=cfg.heads, backend=backend,
                )  # fmt: skip

            with torch.no_grad():
                dists, inds = photo_matches(search, min(cfg.topk, frames * cfg.ws**2), copies)
        if path == "fused":
            return self._finish(x, self._aggregate_fused(qk, v, inds, dists)), inds
        v = v.float().contiguous().reshape(batch, T, C, h, w)
        if path == "train":
            out = self._aggregate(q, k, v, inds, None, backend)
        else:
            k_tall, v_tall = _stack(k), _stack(v)
            out = torch.cat(
                [
                    self._aggregate_frame(q, k_tall, v_tall, inds, dists, t, backend)
                    for t in range(T)
                ],
                dim=2,
            )
        out = out.transpose(1, 2).reshape(BT, C, h, w)
        return self._finish(x, out), inds

    def _finish(self, x: Tensor, out: Tensor) -> Tensor:
        """Residual projection of the attention output (BT, C, h, w), then the FFN."""
        x = x + self.proj(out.to(x.dtype))
        return self.ffn(x)

    def _aggregate_fused(
        self, qk: Tensor, v: Tensor, inds: Tensor, dists: Tensor | None, first: int = 0
    ) -> Tensor:
        """The CPU inference path: `attend_cpu.aggregate` on the projections as they are
        (the queries of inds' frames, frames first.. of qk and v)."""
        from snl_cli.model import attend_cpu

        scale = self.log_scale.exp()
        return attend_cpu.aggregate(qk, v, inds, dists, scale, self.mix, first)

    def _aggregate(
        self, q: Tensor, k: Tensor, v: Tensor, inds: Tensor, dists: Tensor | None, backend: str
    ) -> Tensor:
        """Attention output of every query frame of q: (B, heads, T, Ch, h, w).

        q: (B, T, heads*qk, h, w); k, v: the frames inds point into; inds: (B, heads, T, h,
        w, topk, 3); dists: the search's distances for these inds, or None to recompute.
        """
        cfg = self.cfg
        if dists is None:
            dists = match_dists(q, k, inds, cfg.heads, backend)
        k_agg = min(cfg.k_agg, dists.shape[-1])
        dists, order = dists.topk(k_agg, dim=-1, largest=False, sorted=True)
        chosen = inds.gather(-2, order.unsqueeze(-1).expand(*order.shape, 3))
        scale = self.log_scale.exp().view(1, -1, 1, 1, 1, 1)
        weights = torch.softmax(-scale * dists, dim=-1)  # (B, heads, T, h, w, k_agg)
        values = gather(v, chosen, backend=backend)  # (B, heads, T, k_agg, Ch, h, w)
        B, heads, T, _, ch, h, w = values.shape
        weighted = values * weights.permute(0, 1, 2, 5, 3, 4).unsqueeze(4)
        # the learned combination across ranks and channels: per head, a (Ch, k_agg*Ch) matrix
        # times the (k_agg*Ch, h*w) stack of weighted matches (one batched matmul, no copies)
        mix = self.mix[:, :, :k_agg].reshape(1, heads, 1, ch, k_agg * ch)
        out = torch.matmul(mix, weighted.reshape(B, heads, T, k_agg * ch, h * w))
        return out.reshape(B, heads, T, ch, h, w)

    def _aggregate_frame(
        self,
        q: Tensor,
        k_tall: Tensor,
        v_tall: Tensor,
        inds: Tensor,
        dists: Tensor | None,
        t: int,
        backend: str,
    ) -> Tensor:
        """Inference, one query frame at a time (bounded memory). The clip's key/value frames
        are stacked vertically into one tall frame (`_stack`), so that frame t's matches are
        a one-frame gather. Exact because STAN's match positions are whole pixels."""
        inds = inds[:, :, t : t + 1]
        h = q.shape[-2]
        frame = inds[..., :1]
        tall = torch.cat([torch.zeros_like(frame), frame * h + inds[..., 1:2], inds[..., 2:]], -1)
        part = None if dists is None else dists[:, :, t : t + 1]
        return self._aggregate(q[:, t : t + 1], k_tall, v_tall, tall, part, backend)


def _blocks(channels: int, count: int) -> nn.Sequential:
    """`count` ResBlocks in a row (an empty Sequential is the identity)."""
    return nn.Sequential(*[ResBlock(channels) for _ in range(count)])


def estimate_level(noisy: Tensor) -> Tensor:
    """(B,) noise level of each clip of noisy (B, T, 3, H, W) in [0, 1], on the 0-255 scale:
    `snl_cli.noise.estimate_sigma` on up to 5 of its frames, as `snl denoise --sigma auto`."""
    from snl_cli.noise import estimate_sigma, pick_frames

    frames = noisy.detach().float().permute(0, 1, 3, 4, 2).cpu().numpy()
    picks = pick_frames(noisy.shape[1])
    return torch.tensor([estimate_sigma(clip[i] for i in picks) for clip in frames])


def _neighbour_index(batch: int, T: int, n: int) -> Tensor:
    """(B*T, n) rows of x (B*T, ...) that frame t's input stack holds: frames t-r..t+r of its
    clip (n = 2r+1), the clip's end frames repeated where the window runs past them."""
    r = n // 2
    index = (torch.arange(T).view(-1, 1) + torch.arange(-r, r + 1).view(1, -1)).clamp(0, T - 1)
    return (index.unsqueeze(0) + T * torch.arange(batch).view(-1, 1, 1)).reshape(batch * T, n)


def _stack(x: Tensor) -> Tensor:
    """(B, n, C, h, w) -> (B, 1, C, n*h, w): frames one above the other."""
    B, n, C, h, w = x.shape
    return x.transpose(1, 2).reshape(B, 1, C, n * h, w).contiguous()


class STAN(nn.Module):
    """Blind video denoiser.

    Args:
        cfg: architecture.

    Shape:
        noisy: (B, T, 3, H, W) in [0, 1]; flows: optional (fflow, bflow), each (B, T, 2, H, W),
        (dy, dx) to the next / previous frame (see `snl_cli.flow`); level: optional (B,) noise
        level on the 0-255 scale, read only with `cfg.level_input` (estimated from the clip
        when not given). Returns (B, T, 3, H, W).
    """

    def __init__(self, cfg: STANConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or STANConfig()
        c = cfg.channels
        if cfg.input_frames < 1 or cfg.input_frames % 2 == 0:
            raise ValueError(f"input_frames: expected an odd number >= 1, got {cfg.input_frames}")
        if cfg.ws < 1 or cfg.ws % 2 == 0:
            raise ValueError(f"ws: expected an odd number >= 1, got {cfg.ws}")
        if cfg.wt < 0:
            raise ValueError(f"wt: expected a number >= 0, got {cfg.wt}")
        if cfg.depth and (len(cfg.depth) != len(c) or min(cfg.depth) < 1):
            raise ValueError(f"depth: expected {len(c)} counts >= 1, got {list(cfg.depth)}")
        planes = 3 * cfg.input_frames + int(cfg.level_input)
        self.inp = nn.Conv2d(planes, c[0], 3, padding=1)
        self.enc = nn.ModuleList([ResBlock(ch) for ch in c[:-1]])
        self.downs = nn.ModuleList([down(c[i], c[i + 1]) for i in range(len(c) - 1)])
        self.mid = ResBlock(c[-1])
        self.attn = nn.ModuleList([ShiftedNLSAttention(cfg, c[-1]) for _ in range(cfg.attn_blocks)])
        self.ups = nn.ModuleList([up(c[i + 1], c[i]) for i in range(len(c) - 1)])
        self.fuse = nn.ModuleList([nn.Conv2d(2 * ch, ch, 1) for ch in c[:-1]])
        self.dec = nn.ModuleList([ResBlock(ch) for ch in c[:-1]])
        # ResBlocks after the first at each level (none by default: weights written before
        # `depth` load unchanged)
        more = [cfg.blocks(i) - 1 for i in range(len(c))]
        self.enc_more = nn.ModuleList([_blocks(ch, n) for ch, n in zip(c[:-1], more, strict=False)])
        self.mid_more = _blocks(c[-1], more[-1])
        self.dec_more = nn.ModuleList([_blocks(ch, n) for ch, n in zip(c[:-1], more, strict=False)])
        self.out = nn.Conv2d(c[0], 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # start as the identity: output = noisy input
        nn.init.zeros_(self.out.bias)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def widen_input(self, input_frames: int) -> STAN:
        """A copy that stacks `input_frames` frames at the input, computing what this model
        computes: the centre frame's input weights are kept and the new neighbours' start at
        zero (fine-tuning then learns to use them)."""
        n_old = self.cfg.input_frames
        if input_frames < n_old or input_frames % 2 == 0:
            raise ValueError(f"input_frames: expected an odd number >= {n_old}, got {input_frames}")
        start = 3 * ((input_frames - n_old) // 2)  # frames t-r..t+r in order, then the level
        places = [*range(start, start + 3 * n_old), *([-1] if self.cfg.level_input else [])]
        return self._with_inputs(dataclasses.replace(self.cfg, input_frames=input_frames), places)

    def with_level_input(self) -> STAN:
        """A copy that also reads a noise-level plane, computing what this model computes: the
        plane's input weights start at zero (fine-tuning then learns to use it)."""
        if self.cfg.level_input:
            return self
        planes = self.inp.in_channels
        return self._with_inputs(dataclasses.replace(self.cfg, level_input=True), range(planes))

    def deepen(self, depth: Sequence[int]) -> STAN:
        """A copy with `depth` ResBlocks per level (at least the current ones), computing what
        this model computes: each new block's second convolution starts at zero, so the block
        starts as the identity (fine-tuning then learns to use it)."""
        cfg = self.cfg
        if len(depth) != len(cfg.channels) or any(d < cfg.blocks(i) for i, d in enumerate(depth)):
            have = [cfg.blocks(i) for i in range(len(cfg.channels))]
            raise ValueError(f"depth: expected {len(have)} counts >= {have}, got {list(depth)}")
        grown = STAN(dataclasses.replace(cfg, depth=tuple(depth)))
        for module in grown.modules():
            if isinstance(module, ResBlock):
                nn.init.zeros_(module.conv2.weight)
                nn.init.zeros_(module.conv2.bias)
        missing, unexpected = grown.load_state_dict(self.state_dict(), strict=False)
        assert not unexpected and all("_more." in name for name in missing)
        return grown

    def with_search(self, ws: int | None = None, wt: int | None = None) -> STAN:
        """A copy with the same weights that searches a ws x ws window (at the bottleneck's
        resolution) in frames t-wt..t+wt; no weight depends on the window, so only what the
        attention finds changes (fine-tuning then adapts to it)."""
        cfg = dataclasses.replace(
            self.cfg, ws=self.cfg.ws if ws is None else ws, wt=self.cfg.wt if wt is None else wt
        )
        if cfg == self.cfg:
            return self
        moved = STAN(cfg)
        moved.load_state_dict(self.state_dict())
        return moved

    def _with_inputs(self, cfg: STANConfig, places: Sequence[int]) -> STAN:
        """A STAN of `cfg` holding these weights, this model's input plane i at the new
        input layer's plane places[i] and every other plane's weights at zero."""
        grown = STAN(cfg)
        state = self.state_dict()
        weight = state["inp.weight"]  # (c0, planes, 3, 3)
        new = torch.zeros(weight.shape[0], grown.inp.in_channels, *weight.shape[2:])
        new[:, list(places)] = weight
        grown.load_state_dict({**state, "inp.weight": new})
        return grown

    @property
    def flow_downscale(self) -> int:
        """Shrink factor for the frames its flows are estimated on: the attention's scale.
        The flows are only used averaged down to that resolution and rounded; DIS on the
        shrunk frames costs 1/16 as much and gave the same PSNR to 0.001 dB (8 frames of
        DAVIS dog/goat/kite-surf at sigma 20 and 40)."""
        return self.cfg.scale

    def pool_flows(self, flow: Tensor) -> Tensor:
        """(B, T, 2, H, W) full-resolution flows -> (B, T, 2, h, w) at the attention's
        resolution: edge-replicated to a multiple of the scale, averaged, in its pixels."""
        B, T, _, H, W = flow.shape
        s = self.cfg.scale
        pad_h, pad_w = (-H) % s, (-W) % s
        if pad_h or pad_w:
            flow = F.pad(flow.reshape(B * T, 2, H, W), (0, pad_w, 0, pad_h), mode="replicate")
            flow = flow.reshape(B, T, 2, H + pad_h, W + pad_w)
        return F.avg_pool3d(flow, (1, s, s)) / s if s > 1 else flow

    @staticmethod
    def level_plane(levels: Tensor, like: Tensor) -> Tensor:
        """(N, 1, H, W) input planes holding levels (N,) / LEVEL_SCALE, in the dtype and on
        the device of `like` (N, *, H, W)."""
        H, W = like.shape[-2:]
        return (levels / LEVEL_SCALE).to(like).view(-1, 1, 1, 1).expand(-1, 1, H, W)

    def offsets(self, flows: tuple[Tensor, Tensor] | None, T: int, backend: str) -> Tensor | None:
        """Per-neighbour offsets at the bottleneck from full-resolution flows (B, T, 2, H, W),
        rounded."""
        if flows is None or T < 2 or self.cfg.wt == 0:
            return None
        fflow, bflow = (self.pool_flows(f) for f in flows)
        chain = "torch" if fflow.is_cpu else backend  # tiny at this scale; the reference is exact
        offsets = accumulate_flows(fflow.float(), bflow.float(), self.cfg.wt, backend=chain)
        # Whole pixels at the attention resolution (stnls' "int" mode): every candidate is a real
        # feature pixel, and the search reads no bilinear weights.
        return torch.round(offsets)

    def _encode(
        self, x: Tensor, rows: Tensor, levels: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        """Encoder of the frames whose input stacks are x[rows] (len(rows), n), with their
        noise levels (len(rows),) when the model reads them: bottleneck features
        (len(rows), c[-1], H/s, W/s) and the skip tensors."""
        n, (_, C, H, W) = rows.shape[1], x.shape
        stacked = x[rows.reshape(-1)].reshape(len(rows), n * C, H, W)
        if levels is not None:
            stacked = torch.cat([stacked, self.level_plane(levels, stacked)], 1)
        return self._encode_stacked(stacked.contiguous(memory_format=torch.channels_last))

    def _encode_stacked(self, stacked: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Encoder of input stacks (N, n*3 [+1 level plane], H, W), channels-last: bottleneck
        features (N, c[-1], H/s, W/s) and the skip tensors."""
        y = self.act(self.inp(stacked))
        skips = []
        for enc, more, dn in zip(self.enc, self.enc_more, self.downs, strict=True):
            y = more(enc(y))
            skips.append(y)
            y = dn(y)
        return self.mid_more(self.mid(y)), skips

    def _decode(self, y: Tensor, skips: list[Tensor]) -> Tensor:
        """Decoder: bottleneck features and skips -> the residual to add to the noisy frames."""
        for i in reversed(range(len(self.ups))):
            y = self.ups[i](y)
            y = self.dec_more[i](self.dec[i](self.fuse[i](torch.cat([y, skips[i]], 1))))
        return self.out(y)

    def photo_copies(self, T: int) -> int:
        """How many copies of its frame a clip of T frames is matched as: a one-frame clip (a
        photo) fills the whole temporal window, 2·wt+1 copies, as training shows photos (real
        pairs' crops repeated over a clip's frames, `sampler`); searched alone, a photo's
        matches came out ranked unlike anything the network trained on. 1 for video."""
        return 2 * self.cfg.wt + 1 if T == 1 else 1

    def _attend(
        self, bottom: Tensor, B: int, T: int, offsets: Tensor | None, backend: str
    ) -> Tensor:
        """The attention blocks on bottleneck features (B*T, C, h, w)."""
        inds = None
        for block in self.attn:
            bottom, inds = block(bottom, B, offsets, inds, backend, self.photo_copies(T))
        return bottom

    def forward(
        self,
        noisy: Tensor,
        flows: tuple[Tensor, Tensor] | None = None,
        backend: str = "auto",
        level: Tensor | None = None,
    ) -> Tensor:
        B, T, _, H, W = noisy.shape
        s = self.cfg.scale
        levels = None
        if self.cfg.level_input:
            if level is None:
                level = estimate_level(noisy)
            levels = level.to(noisy.device, torch.float32).reshape(B).repeat_interleave(T)
        pad_h, pad_w = (-H) % s, (-W) % s
        x = noisy.reshape(B * T, 3, H, W)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        with torch.no_grad():
            offsets = self.offsets(flows, T, backend)
        # channels-last convolutions run 1.5-2x faster on CPUs (oneDNN), bf16 or not
        x = x.contiguous(memory_format=torch.channels_last)
        stack = _neighbour_index(B, T, self.cfg.input_frames).to(x.device)  # (B*T, n)
        # The convolutions see one frame at a time: CPU inference runs them frame by frame, so
        # that their full-resolution intermediates stay one frame big and cache-friendly (a
        # 20-frame 480p window would otherwise allocate and fault in ~0.5 GB per layer; this
        # made them 1.6x faster); training and GPUs take the whole clip at once.
        per_frame = not torch.is_grad_enabled() and x.device.type == "cpu"
        groups = stack.split(1) if per_frame else [stack]
        if levels is None:
            parts: list[Tensor | None] = [None] * len(groups)
        else:
            parts = list(levels.split(1)) if per_frame else [levels]
        encoded = [self._encode(x, rows, lv) for rows, lv in zip(groups, parts, strict=True)]
        bottom = torch.cat([e[0] for e in encoded]) if len(encoded) > 1 else encoded[0][0]
        bottom = self._attend(bottom, B, T, offsets, backend)
        if len(groups) == 1:
            x = x + self._decode(bottom, encoded[0][1])
        else:
            out = torch.empty_like(x)
            for i, (_, skips) in enumerate(encoded):
                out[i : i + 1] = x[i : i + 1] + self._decode(bottom[i : i + 1], skips)
            x = out
        return x[:, :, :H, :W].reshape(B, T, 3, H, W)
