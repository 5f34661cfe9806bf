"""Which optical flow should feed Shifted-NLS? Flow-only alignment PSNR on noisy frames.

For each frame pair (t, t+1) of real footage: add seeded Gaussian noise of level sigma
(0-255 scale) to both frames, estimate the flow from the noisy frame t+1 (the query) to
the noisy frame t (the search frame), warp the CLEAN frame t with it (bilinear, mirrored
borders) to predict the CLEAN frame t+1, and report the PSNR of that prediction. Time is
the flow call alone (grey conversion excluded, pre-blur included), median over pairs.

    python scripts/flow_study.py --data ../shared/data/davis2016-val-480p \
        --sigmas 15,30,50 --out runs/flow_study.json
    python scripts/flow_study.py --table runs/flow_study.json

TV-L1 needs cv2.optflow (opencv-contrib); methods whose library is missing are skipped,
so that one can run from another environment into the same --out file (rows merge).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

SEQUENCES = (
    "bmx-trees",
    "car-roundabout",
    "dance-twirl",
    "dog",
    "goat",
    "horsejump-high",
    "kite-surf",
    "paragliding-launch",
)

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


# ---------------------------------------------------------------- methods
def _zero(query: np.ndarray, search: np.ndarray) -> np.ndarray:
    return np.zeros((*query.shape, 2), np.float32)


def _dis(preset: int, **tune: float) -> FlowFn:
    dis = cv2.DISOpticalFlow_create(preset)
    for name, value in tune.items():
        getattr(dis, f"set{name}")(value)
    return lambda q, s: dis.calc(q, s, None)


def _farneback(query: np.ndarray, search: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(query, search, None, 0.5, 5, 21, 3, 7, 1.5, 0)


def _tvl1() -> FlowFn | None:
    if not hasattr(cv2, "optflow"):
        return None
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda q, s: tvl1.calc(q, s, None)


def _pyramid(**kwargs: int) -> FlowFn | None:
    try:
        import torch
    except ImportError:
        return None
    pyramid_flow = _pyramid_module(torch).pyramid_flow
    torch.set_num_threads(2)

    def run(query: np.ndarray, search: np.ndarray) -> np.ndarray:
        q = torch.from_numpy(query).float().div(255)[None, None]
        s = torch.from_numpy(search).float().div(255)[None, None]
        with torch.inference_mode():
            dydx = pyramid_flow(q, s, **kwargs)[0]
        return dydx.flip(0).permute(1, 2, 0).numpy()

    return run


def _pyramid_module(torch):
    """Coarse-to-fine non-local block matching in torch: our own GPU-capable candidate.

    It lost the study (slower on the CPU than DIS and worse at sigma 30-50), so it lives
    here, with its only user, rather than in the package.
    """
    import types

    import torch.nn.functional as F
    from torch import Tensor

    def _box(x: Tensor, size: int) -> Tensor:
        """Mean over a size×size window (odd), same spatial size, edge-replicated."""
        pad = size // 2
        x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        return F.avg_pool2d(x, size, stride=1)

    def _warp(img: Tensor, flow: Tensor) -> Tensor:
        """Bilinear read of img at (y + flow_y, x + flow_x), border-clamped; (N, C, H, W)."""
        h, w = img.shape[-2:]
        ys = torch.arange(h, dtype=img.dtype, device=img.device).view(1, h, 1)
        xs = torch.arange(w, dtype=img.dtype, device=img.device).view(1, 1, w)
        gy = (ys + flow[:, 0]) * (2.0 / max(h - 1, 1)) - 1.0
        gx = (xs + flow[:, 1]) * (2.0 / max(w - 1, 1)) - 1.0
        grid = torch.stack((gx, gy), dim=-1)
        return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)

    def _subpixel(costs: Tensor, best: Tensor, radius: int) -> Tensor:
        """Parabola fit through the best cost and its two neighbours on each axis."""
        side = 2 * radius + 1
        by, bx = best // side, best % side
        out = []
        for b, step in ((by, side), (bx, 1)):
            inner = (b > 0) & (b < side - 1)
            lo = torch.where(inner, best - step, best)
            hi = torch.where(inner, best + step, best)
            c0 = costs.gather(1, best.unsqueeze(1)).squeeze(1)
            cl = costs.gather(1, lo.unsqueeze(1)).squeeze(1)
            ch = costs.gather(1, hi.unsqueeze(1)).squeeze(1)
            denom = cl - 2 * c0 + ch
            step_ok = inner & (denom > 1e-12)
            frac = torch.where(step_ok, 0.5 * (cl - ch) / denom.clamp_min(1e-12), 0.0)
            out.append((b - radius).to(costs.dtype) + frac.clamp(-0.5, 0.5))
        return torch.stack(out, dim=1)

    def _match_level(query: Tensor, search: Tensor, flow: Tensor, radius: int, ps: int) -> Tensor:
        """One block-matching step: best integer shift around the warped search frame."""
        warped = _warp(search, flow)
        padded = F.pad(warped, (radius,) * 4, mode="replicate")
        h, w = query.shape[-2:]
        side = 2 * radius + 1
        diffs = [
            (query - padded[..., dy : dy + h, dx : dx + w]).square().sum(1, keepdim=True)
            for dy in range(side)
            for dx in range(side)
        ]
        costs = _box(torch.cat(diffs, dim=1), ps)
        best = costs.argmin(dim=1)
        return flow + _subpixel(costs, best, radius)

    def _median3(flow: Tensor) -> Tensor:
        """3×3 median of each flow channel: removes isolated block-matching outliers."""
        n, c, h, w = flow.shape
        cols = F.unfold(F.pad(flow, (1, 1, 1, 1), mode="replicate"), 3).view(n, c, 9, h, w)
        return cols.median(dim=2).values

    def pyramid_flow(
        query: Tensor,
        search: Tensor,
        *,
        levels: int = 4,
        radius: int = 4,
        refine_radius: int = 1,
        ps: int = 7,
    ) -> Tensor:
        """Coarse-to-fine non-local block matching from query to search frames.

        Args:
            query: (N, C, H, W) frames whose pixels are matched.
            search: (N, C, H, W) frames searched.
            levels: pyramid levels (each halves the size).
            radius: search radius in pixels at the coarsest level.
            refine_radius: search radius at the finer levels.
            ps: patch side of the matching cost.

        Returns:
            (N, 2, H, W) displacement (dy, dx) from each query pixel to its match.
        """
        pyr_q, pyr_s = [query], [search]
        for _ in range(levels - 1):
            pyr_q.append(F.avg_pool2d(pyr_q[-1], 2, ceil_mode=True))
            pyr_s.append(F.avg_pool2d(pyr_s[-1], 2, ceil_mode=True))
        flow = torch.zeros_like(pyr_q[-1][:, :1]).expand(-1, 2, -1, -1).contiguous()
        for level, (q, s) in enumerate(zip(reversed(pyr_q), reversed(pyr_s), strict=True)):
            if flow.shape[-2:] != q.shape[-2:]:
                scale = torch.tensor([q.shape[-2] / flow.shape[-2], q.shape[-1] / flow.shape[-1]])
                flow = F.interpolate(flow, size=q.shape[-2:], mode="bilinear", align_corners=False)
                flow = flow * scale.to(flow).view(1, 2, 1, 1)
            flow = _median3(_match_level(q, s, flow, radius if level == 0 else refine_radius, ps))
        return flow

    return types.SimpleNamespace(pyramid_flow=pyramid_flow)


def _blurred(fn: FlowFn | None, blur: float) -> FlowFn | None:
    if fn is None or blur <= 0:
        return fn
    return lambda q, s: fn(cv2.GaussianBlur(q, (0, 0), blur), cv2.GaussianBlur(s, (0, 0), blur))


def _downscaled(fn: FlowFn | None, factor: int) -> FlowFn | None:
    """Compute the flow at 1/factor size and bring it back (values scaled up)."""
    if fn is None or factor == 1:
        return fn

    def run(query: np.ndarray, search: np.ndarray) -> np.ndarray:
        h, w = query.shape
        small = (w // factor, h // factor)
        q = cv2.resize(query, small, interpolation=cv2.INTER_AREA)
        s = cv2.resize(search, small, interpolation=cv2.INTER_AREA)
        flow = cv2.resize(fn(q, s), (w, h), interpolation=cv2.INTER_LINEAR)
        return flow * np.float32(factor)

    return run


def methods() -> dict[str, FlowFn | None]:
    """Name -> flow function (None when its library is missing here)."""
    uf, fast, med = (
        cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        cv2.DISOPTICAL_FLOW_PRESET_FAST,
        cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    )
    table: dict[str, FlowFn | None] = {
        "zero": _zero,
        "dis-ultrafast": _dis(uf),
        "dis-fast": _dis(fast),
        "dis-medium": _dis(med),
        "dis-fast+blur1": _blurred(_dis(fast), 1.0),
        "dis-medium+blur1": _blurred(_dis(med), 1.0),
        "dis-medium+blur2": _blurred(_dis(med), 2.0),
        "dis-medium-ps12+blur1": _blurred(_dis(med, PatchSize=12, PatchStride=4), 1.0),
        "dis-medium@1/2": _downscaled(_dis(med), 2),
        "farneback": _farneback,
        "farneback+blur1": _blurred(_farneback, 1.0),
        "tvl1": _tvl1(),
        "tvl1+blur1": _blurred(_tvl1(), 1.0),
        "dis-medium@clean": _dis(med),
        "dis-medium+blur1@clean": _blurred(_dis(med), 1.0),
        "nls-pyramid": _pyramid(),
        "nls-pyramid+blur1": _blurred(_pyramid(), 1.0),
    }
    return table


# ---------------------------------------------------------------- data and metric
def load_pairs(root: Path, sequences: list[str], pairs: int) -> list[tuple[str, int, Path, Path]]:
    """`pairs` evenly spaced consecutive-frame pairs (t, t+1) from each sequence."""
    out = []
    for seq in sequences:
        frames = sorted((root / seq).glob("*.jpg"))
        for t in np.linspace(0, len(frames) - 2, pairs).round().astype(int):
            out.append((seq, int(t), frames[t], frames[t + 1]))
    return out


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32)


def _noisy_grey(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = clean + rng.normal(0.0, sigma, clean.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(noisy, 0, 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY)


def warp(image: np.ndarray, flow_dxdy: np.ndarray) -> np.ndarray:
    """Bilinear read of image at (x + dx, y + dy), borders mirrored without edge repeat."""
    h, w = flow_dxdy.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image,
        xs + flow_dxdy[..., 0],
        ys + flow_dxdy[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )


def psnr(pred: np.ndarray, ref: np.ndarray) -> float:
    mse = float(np.mean((pred.astype(np.float64) - ref) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


# ---------------------------------------------------------------- study
def run_study(args: argparse.Namespace) -> dict[str, dict]:
    table = methods()
    chosen = args.methods.split(",") if args.methods else list(table)
    pairs = load_pairs(Path(args.data), args.sequences.split(","), args.pairs)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    rows: dict[str, dict] = {}
    for index, (seq, t, path0, path1) in enumerate(pairs):
        clean0, clean1 = _read(path0), _read(path1)
        for sigma in sigmas:
            seed = 1000 * index + int(sigma)
            noisy0 = _noisy_grey(clean0, sigma, seed)
            noisy1 = _noisy_grey(clean1, sigma, seed + 1)
            clean_grey = [
                cv2.cvtColor(c.astype(np.uint8), cv2.COLOR_RGB2GRAY) for c in (clean0, clean1)
            ]
            for name in chosen:
                fn = table.get(name)
                if fn is None:
                    continue
                # "@clean" rows see the clean frames: how much the noise costs each method.
                query, search = (
                    (clean_grey[1], clean_grey[0]) if name.endswith("@clean") else (noisy1, noisy0)
                )
                start = time.perf_counter()
                flow = fn(query, search)
                ms = 1000 * (time.perf_counter() - start)
                row = rows.setdefault(f"{name}|{sigma:g}", {"psnr": [], "ms": [], "mag": []})
                row["psnr"].append(psnr(warp(clean0, flow), clean1))
                row["ms"].append(ms)
                row["mag"].append(float(np.median(np.hypot(flow[..., 0], flow[..., 1]))))
        sys.stderr.write(f"\r{index + 1}/{len(pairs)} {seq}:{t}   ")
    sys.stderr.write("\n")
    return rows


def render(rows: dict[str, dict]) -> str:
    """Markdown table: one row per method, PSNR per sigma, median ms per pair."""
    names = list(dict.fromkeys(key.split("|")[0] for key in rows))
    sigmas = sorted({float(key.split("|")[1]) for key in rows})
    head = ["method", *(f"σ={s:g} dB" for s in sigmas), "ms/pair (median)", "pairs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells, ms, count = [name], [], 0
        for s in sigmas:
            row = rows.get(f"{name}|{s:g}")
            cells.append(f"{statistics.fmean(row['psnr']):.2f}" if row else "–")
            if row:
                ms += row["ms"]
                count = len(row["psnr"])
        cells += [f"{statistics.median(ms):.0f}", str(count)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/davis2016-val-480p")
    parser.add_argument("--sequences", default=",".join(SEQUENCES))
    parser.add_argument("--pairs", type=int, default=10, help="pairs per sequence")
    parser.add_argument("--sigmas", default="15,30,50")
    parser.add_argument("--methods", default="", help="comma list; default all available")
    parser.add_argument("--out", default="", help="JSON file to merge the rows into")
    parser.add_argument("--table", default="", help="only render this JSON file")
    args = parser.parse_args()
    if args.table:
        sys.stdout.write(render(json.loads(Path(args.table).read_text())) + "\n")
        return
    rows = run_study(args)
    if args.out:
        path = Path(args.out)
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged.update(rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged))
        rows = merged
    sys.stdout.write(render(rows) + "\n")


if __name__ == "__main__":
    main()
