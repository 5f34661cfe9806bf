"""`snl train`: fit STAN (blind) on clean footage with synthetic noise, and on real noisy/clean
image pairs.

Noise (`--noise`, `snl_cli.synthetic`): "gaussian" (sigma ~ U[0, 50]), "camera" (a simulated
camera: shot/read noise in linear light, mosaic and demosaic, colour processing, codecs) or
"mix" (a third Gaussian). Data are folders of frames or video files (each one clip),
optionally folders of still images turned into short clips by random smooth motion, and
optionally folders of real pairs (`noisy/` and `clean/` with matching names), shown as still
clips (the same noisy frame repeated, as a photo is denoised); `snl_cli.sampler` draws the
training crops. Training runs for a budget
of minutes (and optionally steps: whichever runs out first), checkpoints regularly and resumes
from its checkpoint; the schedule (cosine over the whole budget) continues where it stopped.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from snl_cli.clips import expand_clips
from snl_cli.denoisers import resolve_device
from snl_cli.errors import UsageError
from snl_cli.metrics import psnr_tensor
from snl_cli.model.stan import STAN, STANConfig
from snl_cli.model.weights import save_stan
from snl_cli.pairs import load_pairs
from snl_cli.sampler import PAIR_SHARE, TRANSFER_SHARE, ClipSampler, load_clip, load_stills
from snl_cli.synthetic import (
    BLOTCH_LEVEL,
    BLOTCH_SIGMA,
    JPEG_QUALITY,
    NOISE_KINDS,
    VIDEO_CRF,
    Mixture,
    degrade,
    gaussian,
)

VAL_SIGMAS = (10, 20, 30, 40, 50)


@dataclass
class TrainOptions:
    """Everything that defines a training run (saved in checkpoints and the manifest)."""

    data: list[str]
    out: str
    stills: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    minutes: float = 60.0
    steps: int | None = None  # optional step budget; training stops at whichever comes first
    crop: int = 96
    frames: int = 5
    batch: int = 4
    lr: float = 5e-4
    sigma_max: float = 50.0
    noise: str = "gaussian"
    gaussian_share: float = Mixture.gaussian_share  # of clips under noise "mix"
    codec_share: float = Mixture.codec_share  # of Gaussian (and transferred) clips, compressed
    pairs: list[str] = field(default_factory=list)
    val_pairs: list[str] = field(default_factory=list)
    pair_share: float = PAIR_SHARE
    transfer_share: float = TRANSFER_SHARE
    photo_share: float = 0.0  # of synthetic-noise clips shown as a photo (one frame, repeated)
    blotch_share: float = 0.0  # of simulated-camera clips with the noise left blotchy
    loss: str = "charbonnier"  # see LOSSES
    seed: int = 0
    checkpoint: str | None = None
    checkpoint_minutes: float = 5.0
    val_minutes: float = 10.0
    val_frames: int = 5
    val_crop: int = 192
    bf16: bool = True
    backend: str = "auto"
    device: str = "cpu"
    init: str | None = None
    architecture: dict = field(default_factory=dict)

    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint) if self.checkpoint else Path(self.out).with_suffix(".ckpt")


# ----------------------------------------------------------------------------- training


def charbonnier(out: Tensor, clean: Tensor) -> Tensor:
    """The paper's loss: sqrt(MSE + 1e-6), the MSE over the whole batch."""
    return torch.sqrt(F.mse_loss(out, clean) + 1e-6)


PSNR_LOSS_FLOOR = 1e-5  # MSE; clips cleaner than 50 dB stop gaining weight


def psnr_loss(out: Tensor, clean: Tensor) -> Tensor:
    """Charbonnier with each clip of the batch (B, ...) weighted by 1 / its own MSE.

    One MSE over the batch lets a clip at sigma 50 weigh a hundred times one whose error is
    40 dB down. Weighted by 1 / MSE, the gradient points where minus the mean PSNR of the
    clips falls fastest (the PSNR loss of HINet/NAFNet, Chen et al. 2021-22): every clip counts
    by its dB, as benchmarks average them. The weights have mean 1, so the step size and the
    gradient clipping stay Charbonnier's; the floor keeps near-clean clips from dominating."""
    mse = (out - clean).square().flatten(1).mean(1)
    weight = 1 / (mse.detach() + PSNR_LOSS_FLOOR)
    return torch.sqrt((weight / weight.mean() * mse).mean() + 1e-6)


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "charbonnier": charbonnier,
    "psnr": psnr_loss,
}


FlowFn = Callable[[Tensor], tuple[Tensor, Tensor]]


def default_flow_fn(downscale: int = 1) -> FlowFn:
    """Flows on the noisy frames, (B, T, 3, H, W) -> (fflow, bflow) (B, T, 2, H, W),
    estimated on frames shrunk by `downscale` (see `STAN.flow_downscale`)."""
    from snl_cli.flow import estimate_flows

    return functools.partial(estimate_flows, downscale=downscale)


def run_model(
    model: STAN, noisy: Tensor, flow_fn: FlowFn | None, bf16: bool, backend: str = "auto"
) -> Tensor:
    needs_motion = flow_fn is not None and model.cfg.attn_blocks > 0
    flows = flow_fn(noisy) if needs_motion else None
    with torch.autocast(noisy.device.type, dtype=torch.bfloat16, enabled=bf16):
        return model(noisy, flows, backend=backend).float()


def train_step(
    model: STAN,
    optim: torch.optim.Optimizer,
    clean: Tensor,
    noisy: Tensor,
    flow_fn: FlowFn | None,
    bf16: bool,
    backend: str = "auto",
    loss_fn: Callable[[Tensor, Tensor], Tensor] = charbonnier,
) -> float:
    """One optimisation step on a batch (B, T, 3, H, W); returns the loss."""
    loss = loss_fn(run_model(model, noisy, flow_fn, bf16, backend), clean)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    return loss.item()


def validation_set(paths: list[str], frames: int, crop: int) -> list[Tensor]:
    """Centre crops of the first `frames` frames of each validation clip, (T, 3, h, w)."""
    out = []
    for path in expand_clips(paths):
        clip = load_clip(path, max_frames=frames)
        _, H, W, _ = clip.shape
        h, w = min(crop, H), min(crop, W)
        y, x = (H - h) // 2, (W - w) // 2
        part = clip[:, y : y + h, x : x + w]
        out.append(torch.from_numpy(np.ascontiguousarray(part)).permute(0, 3, 1, 2).float() / 255)
    return out


@torch.no_grad()
def evaluate(
    model: STAN,
    clips: list[Tensor],
    sigmas: tuple[int, ...],
    flow_fn: FlowFn | None,
    bf16: bool,
    seed: int = 123,
    backend: str = "auto",
) -> dict[int, float]:
    """Mean PSNR (dB) per sigma over the clips, with seeded noise."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    result = {}
    for sigma in sigmas:
        gen = torch.Generator().manual_seed(seed + sigma)
        scores = []
        for clean in clips:
            clean = clean.to(device)
            noisy = gaussian(clean[None], torch.tensor([float(sigma)]), gen)
            out = run_model(model, noisy, flow_fn, bf16, backend)
            scores.append(psnr_tensor(out.clamp(0, 1), clean[None]))
        result[sigma] = float(np.mean(scores))
    model.train(was_training)
    return result


def pair_validation_set(folders: list[str], crop: int) -> list[tuple[Tensor, Tensor]]:
    """Centre crops (crop x crop, 0 = whole) of held-out real pairs: (noisy, clean), each a
    one-frame clip (1, 3, h, w)."""
    out = []
    for folder in folders:
        for noisy, clean in load_pairs(Path(folder)):
            H, W, _ = noisy.shape
            h, w = (min(crop, H), min(crop, W)) if crop else (H, W)
            y, x = (H - h) // 2, (W - w) // 2
            out.append(
                tuple(
                    torch.from_numpy(np.ascontiguousarray(img[y : y + h, x : x + w]))
                    .permute(2, 0, 1)[None]
                    .float()
                    / 255
                    for img in (noisy, clean)
                )
            )
    return out


@torch.no_grad()
def evaluate_pairs(
    model: STAN,
    pairs: list[tuple[Tensor, Tensor]],
    flow_fn: FlowFn | None,
    bf16: bool,
    backend: str = "auto",
) -> float:
    """Mean PSNR (dB) of the denoised noisy images of real pairs against their clean ones."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for noisy, clean in pairs:
        out = run_model(model, noisy[None].to(device), flow_fn, bf16, backend)
        scores.append(psnr_tensor(out.clamp(0, 1), clean[None].to(device)))
    model.train(was_training)
    return float(np.mean(scores))


def budget_spent(opts: TrainOptions, step: int, minutes: float) -> float:
    """Fraction of the budget used: minutes or steps, whichever is further along (0..1)."""
    frac = minutes / max(opts.minutes, 1e-9)
    if opts.steps:
        frac = max(frac, step / opts.steps)
    return min(frac, 1.0)


def _lr_at(opts: TrainOptions, spent: float) -> float:
    return opts.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * spent)))


@dataclass
class TrainState:
    step: int = 0
    minutes: float = 0.0
    history: list[dict] = field(default_factory=list)
    init: dict | None = None  # the weights fine-tuned from: path, sha256, their scores


def _save_checkpoint(
    path: Path,
    model: STAN,
    optim: torch.optim.Optimizer,
    state: TrainState,
    opts: TrainOptions,
    rng: random.Random,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optim": optim.state_dict(),
            "state": asdict(state),
            "options": asdict(opts),
            "architecture": model.cfg.to_dict(),
            "python_rng": rng.getstate(),
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)


def training_batch(
    sampler: ClipSampler, opts: TrainOptions, rng: random.Random
) -> tuple[Tensor, Tensor]:
    """(clean, noisy), each (batch, frames, 3, crop, crop): real pairs as they are, every other
    clip degraded by the run's noise model (`synthetic.degrade`); `opts.photo_share` of those
    become photos as `snl denoise` sees one: the first frame, degraded once, repeated."""
    cleans, noisies = [], []
    mixture = Mixture(opts.gaussian_share, opts.codec_share, opts.blotch_share)
    for _ in range(opts.batch):
        clean, noisy = sampler.sample()
        if noisy is None and opts.photo_share and rng.random() < opts.photo_share:
            photo, _ = degrade(clean[:1], opts.noise, rng, opts.sigma_max, mixture)
            clean, noisy = clean[:1].expand_as(clean), photo.expand_as(clean)
        elif noisy is None:
            noisy, _ = degrade(clean, opts.noise, rng, opts.sigma_max, mixture)
        cleans.append(clean)
        noisies.append(noisy)
    return torch.stack(cleans), torch.stack(noisies)


def _loop(
    opts: TrainOptions,
    model: STAN,
    optim: torch.optim.Optimizer,
    sampler: ClipSampler,
    val_clips: list[Tensor],
    val_pairs: list[tuple[Tensor, Tensor]],
    flow_fn: FlowFn | None,
    state: TrainState,
    rng: random.Random,
    progress: Callable[[TrainState, dict], None] | None,
) -> None:
    """Steps until the budget is spent, validating and checkpointing on the way."""
    device = next(model.parameters()).device
    ckpt_path = opts.checkpoint_path()
    start = time.monotonic()
    base_minutes = state.minutes
    last_ckpt = last_val = time.monotonic()
    info: dict = {}
    while (spent := budget_spent(opts, state.step, state.minutes)) < 1.0:
        for group in optim.param_groups:
            group["lr"] = _lr_at(opts, spent)
        clean, noisy = training_batch(sampler, opts, rng)
        loss = train_step(
            model,
            optim,
            clean.to(device),
            noisy.to(device),
            flow_fn,
            opts.bf16,
            opts.backend,
            LOSSES[opts.loss],
        )
        state.step += 1
        state.minutes = base_minutes + (time.monotonic() - start) / 60
        info = {"loss": loss, "lr": optim.param_groups[0]["lr"]}
        now = time.monotonic()
        if (val_clips or val_pairs) and (now - last_val) / 60 >= opts.val_minutes:
            scores: dict = {}
            if val_clips:
                scores = evaluate(
                    model, val_clips, (20, 40), flow_fn, opts.bf16, backend=opts.backend
                )
            if val_pairs:
                scores["real"] = evaluate_pairs(model, val_pairs, flow_fn, opts.bf16, opts.backend)
            state.history.append(
                {
                    "step": state.step,
                    "minutes": round(state.minutes, 2),
                    **{f"psnr{s}": round(v, 3) for s, v in scores.items()},
                }
            )
            info.update(scores)
            last_val = time.monotonic()
        if (now - last_ckpt) / 60 >= opts.checkpoint_minutes:
            _save_checkpoint(ckpt_path, model, optim, state, opts, rng)
            last_ckpt = time.monotonic()
        if progress is not None:
            progress(state, info)


def noise_description(opts: TrainOptions, level_input: bool = False) -> str:
    """The training noise in words, for the manifest."""
    video = ", ".join(f"{c} crf {low:g}-{high:g}" for c, (low, high) in VIDEO_CRF.items())
    jpeg = f"JPEG q{JPEG_QUALITY[0]}-{JPEG_QUALITY[1]}"
    gauss = f"Gaussian, sigma ~ U[0, {opts.sigma_max}] (0-255 scale)"
    blotchy = ""
    if opts.blotch_share:
        (s0, s1), (l0, l1) = BLOTCH_SIGMA, BLOTCH_LEVEL
        blotchy = (
            f"; {opts.blotch_share:.0%} of them with the noise left blotchy, blurred by "
            f"{s0:g}-{s1:g} px at {l0:g}-{l1:g} of its std, as a phone's noise reduction leaves it"
        )
    camera = (
        "simulated camera (snl_cli.synthetic.random_camera: Poisson-Gaussian in linear light "
        "after Brooks et al. 2019 with shot up to 0.02 and low-light gain up to 8, random WB "
        "and colour matrix, RGGB mosaic and bilinear demosaic, half clipping below black "
        "before the gamma curve and half after it, in-camera chroma smoothing, "
        f"denoise and sharpening, {jpeg} or {video}{blotchy})"
    )
    if opts.codec_share:
        gauss += f", {opts.codec_share:.0%} of them then {video} or {jpeg}"
    share = opts.gaussian_share
    if share == Mixture.gaussian_share:
        mix = f"1/3 {gauss}; 2/3 {camera}"
    else:
        mix = f"{share:.0%} {gauss}; {1 - share:.0%} {camera}"
    text = {"gaussian": gauss, "camera": camera, "mix": mix}
    pairs = f"; {opts.pair_share:.0%} of clips from real pairs" if opts.pairs else ""
    if opts.pairs and opts.transfer_share:
        pairs += (
            f", {opts.transfer_share:.0%} of the others with real pairs' noise residuals "
            "(an independent crop per frame) instead of synthetic noise"
        )
        if opts.codec_share:
            pairs += f", {opts.codec_share:.0%} of those then {video} or {jpeg}"
    if opts.photo_share:
        pairs += (
            f"; {opts.photo_share:.0%} of the synthetic-noise clips shown as photos (one noisy "
            "frame repeated)"
        )
    told = ""
    if level_input:
        told = ", shown the level snl_cli.noise.estimate_sigma reads from the noisy crop"
    return text[opts.noise] + pairs + "; blind" + told


def train(
    opts: TrainOptions,
    *,
    flow_fn: FlowFn | str | None = "default",
    progress: Callable[[TrainState, dict], None] | None = None,
    command: str = "",
) -> dict:
    """Train (or resume) and write the weights + manifest; returns the manifest.

    `command` is the command line to record in the manifest (the CLI passes its own)."""
    rng = random.Random(opts.seed)
    torch.manual_seed(opts.seed)
    ckpt_path = opts.checkpoint_path()
    resumed = init = None
    if ckpt_path.is_file():
        resumed = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model = STAN(STANConfig.from_dict(resumed["architecture"]))
    elif opts.init:
        from snl_cli.model.weights import load_stan

        model, init = load_stan(opts.init)  # fine-tuning: its architecture, its weights
        wanted = opts.architecture.get("input_frames") or model.cfg.input_frames
        if wanted != model.cfg.input_frames:
            try:
                model = model.widen_input(wanted)
            except ValueError as exc:
                raise UsageError(f"--input-frames with --init {opts.init}: {exc}") from None
        if opts.architecture.get("level_input"):
            model = model.with_level_input()
        if opts.architecture.get("depth"):
            try:
                model = model.deepen(opts.architecture["depth"])
            except ValueError as exc:
                raise UsageError(f"--depth with --init {opts.init}: {exc}") from None
        try:
            model = model.with_search(opts.architecture.get("ws"), opts.architecture.get("wt"))
        except ValueError as exc:
            raise UsageError(f"--search-window/--search-frames: {exc}") from None
    else:
        arch = {k: v for k, v in opts.architecture.items() if v is not None}
        model = STAN(STANConfig.from_dict(arch) if arch else STANConfig())
    if opts.noise not in NOISE_KINDS:
        raise UsageError(f"--noise: expected one of {', '.join(NOISE_KINDS)}, got {opts.noise!r}")
    if opts.loss not in LOSSES:
        raise UsageError(f"--loss: expected one of {', '.join(LOSSES)}, got {opts.loss!r}")
    if flow_fn == "default":
        flow_fn = default_flow_fn(model.flow_downscale)
    device = resolve_device(opts.device)
    model = model.to(device, memory_format=torch.channels_last)
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=0.0)
    state = TrainState()
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optim.load_state_dict(resumed["optim"])
        state = TrainState(**resumed["state"])
        rng.setstate(resumed["python_rng"])
        torch.set_rng_state(resumed["torch_rng"])
    elif init is not None:
        keep = ("sha256", "command", "steps", "minutes", "val_psnr")
        state.init = {"path": opts.init, **{k: init[k] for k in keep if k in init}}

    clips = [load_clip(p) for p in expand_clips(opts.data)] if opts.data else []
    stills = [img for folder in opts.stills for img in load_stills(Path(folder))]
    pairs = [pair for folder in opts.pairs for pair in load_pairs(Path(folder))]
    sampler = ClipSampler(
        clips,
        stills,
        opts.frames,
        opts.crop,
        rng,
        pairs,
        opts.pair_share,
        opts.transfer_share,
        opts.codec_share,
    )
    val_clips = validation_set(opts.val, opts.val_frames, opts.val_crop) if opts.val else []
    val_pairs = pair_validation_set(opts.val_pairs, opts.val_crop)

    model.train()
    try:
        _loop(opts, model, optim, sampler, val_clips, val_pairs, flow_fn, state, rng, progress)
    except KeyboardInterrupt:
        _save_checkpoint(ckpt_path, model, optim, state, opts, rng)  # resume loses nothing
        raise
    _save_checkpoint(ckpt_path, model, optim, state, opts, rng)
    final: dict = {}
    if val_clips:
        final = evaluate(model, val_clips, VAL_SIGMAS, flow_fn, opts.bf16, backend=opts.backend)
    real = {}
    for folder in opts.val_pairs:  # whole images, one score per folder
        full = pair_validation_set([folder], 0)
        real[folder] = round(evaluate_pairs(model, full, flow_fn, opts.bf16, opts.backend), 3)
    manifest = {
        "model": "STAN",
        "command": command,
        "training_data": {
            "clips": [str(p) for p in expand_clips(opts.data)] if opts.data else [],
            "stills": opts.stills,
            "pairs": opts.pairs,
        },
        "validation_data": opts.val,
        "validation_pairs": opts.val_pairs,
        "steps": state.step,
        "minutes": round(state.minutes, 2),
        "options": asdict(opts),
        "val_psnr": {str(s): round(v, 3) for s, v in final.items()},
        "val_real_psnr": real,
        "val_note": f"centre {opts.val_crop}px crops of the first {opts.val_frames} frames, "
        "seeded Gaussian noise quantised to 8 bits; real pairs: whole held-out images, "
        "each denoised as a one-frame clip",
        "history": state.history,
        "noise": noise_description(opts, model.cfg.level_input),
        "loss": opts.loss,
        "fine_tuned_from": state.init,
    }
    return save_stan(model, opts.out, manifest)
