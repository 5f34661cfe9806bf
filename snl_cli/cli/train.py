"""`snl train`: fit STAN weights on your own footage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from snl_cli.cli.common import cli_errors, emit
from snl_cli.cli.options import Device, DeviceOpt


def train(
    data: Annotated[
        list[Path],
        typer.Option("--data", help="Clips: video files or frame folders (or folders of them)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Weights file to write (.safetensors).")],
    val: Annotated[
        list[Path] | None, typer.Option("--val", help="Validation clips (never trained on).")
    ] = None,
    stills: Annotated[
        list[Path] | None,
        typer.Option("--stills", help="Folders of still images, moved smoothly into clips."),
    ] = None,
    pairs: Annotated[
        list[Path] | None,
        typer.Option(
            "--pairs", help="Folders of real pairs (noisy/ and clean/, matching names) to train on."
        ),
    ] = None,
    val_pairs: Annotated[
        list[Path] | None,
        typer.Option("--val-pairs", help="Folders of held-out real pairs to validate on."),
    ] = None,
    noise: Annotated[
        str,
        typer.Option(
            help="Synthetic noise: gaussian (sigma 0-50), camera (simulated camera pipeline and "
            "codecs) or mix (1/3 Gaussian)."
        ),
    ] = "mix",
    loss: Annotated[
        str,
        typer.Option(
            help="charbonnier (one error over the batch, the paper's) or psnr (each clip's "
            "PSNR counts alike, as benchmarks average them)."
        ),
    ] = "charbonnier",
    minutes: Annotated[
        float, typer.Option(min=0.01, help="Total training time (resumes count).")
    ] = 60.0,
    steps: Annotated[
        int | None,
        typer.Option(min=1, help="Stop after this many steps (resumes count) if sooner."),
    ] = None,
    pair_share: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of training clips drawn from --pairs."),
    ] = 0.2,
    transfer_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the other clips noised with --pairs' real noise (noisy - clean of a "
            "random crop, new each frame) instead of synthetic noise.",
        ),
    ] = 0.0,
    photo_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of synthetic-noise clips shown as a photo is denoised: one noisy frame "
            "repeated.",
        ),
    ] = 0.0,
    blotch_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of simulated-camera clips whose noise is left blotchy (blurred by "
            "0.8-2.5 px), as a phone's own noise reduction leaves it.",
        ),
    ] = 0.0,
    gaussian_share: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of Gaussian clips under --noise mix."),
    ] = 1 / 3,
    codec_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of Gaussian clips, and of clips with --transfer-share's real noise, then "
            "compressed (x264 crf 16-30, HEVC crf 20-34 or JPEG q60-95), as recorded or "
            "re-encoded noisy video is.",
        ),
    ] = 0.0,
    crop: Annotated[int, typer.Option(min=32, help="Crop size in pixels.")] = 96,
    frames: Annotated[int, typer.Option(min=2, help="Frames per training clip.")] = 5,
    batch: Annotated[int, typer.Option(min=1, help="Clips per step.")] = 4,
    lr: Annotated[
        float, typer.Option(min=0.0, help="Peak learning rate (cosine schedule).")
    ] = 5e-4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    checkpoint: Annotated[
        Path | None, typer.Option(help=r"Checkpoint to write and resume from \[default: OUT.ckpt].")
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Start from these STAN weights (fine-tune; their architecture)."),
    ] = None,
    val_minutes: Annotated[
        float, typer.Option(min=0.01, help="Minutes between validations (PSNR at sigma 20/40).")
    ] = 10.0,
    channels: Annotated[
        str, typer.Option(help="UNet widths per level, comma-separated.")
    ] = "16,32,64",
    depth: Annotated[
        str | None,
        typer.Option(
            help=r"ResBlocks per level, comma-separated like --channels (the last: the "
            r"bottleneck) \[default: one each, or --init's; more than --init's adds blocks "
            "that start as the identity].",
        ),
    ] = None,
    heads: Annotated[int, typer.Option(min=1, help="Attention heads.")] = 4,
    attn_blocks: Annotated[
        int, typer.Option(min=0, help="Attention blocks (the first searches; 0: plain UNet).")
    ] = 2,
    input_frames: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=r"Frames stacked at the input (odd; 5 = t-2..t+2) \[default: 1, or --init's; "
            "more than --init's widens its input layer, new frames starting at zero weight].",
        ),
    ] = None,
    level_input: Annotated[
        bool,
        typer.Option(
            "--level-input",
            help="Show the network the noise level estimated from its noisy input (one more "
            "input plane; with --init it starts at zero weight). Still blind: snl denoise "
            "estimates it (--sigma auto) unless --sigma gives it.",
        ),
    ] = False,
    search_window: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=r"Attention search window, pixels per side at the bottleneck (odd) \[default: "
            "9, or --init's; with --init the same weights search the new window].",
        ),
    ] = None,
    search_frames: Annotated[
        int | None,
        typer.Option(
            min=0,
            help=r"Attention searches frames t-N..t+N \[default: 1, or --init's; with --init "
            "the same weights search the new frames].",
        ),
    ] = None,
    bf16: Annotated[bool, typer.Option("--bf16/--no-bf16", help="bfloat16 autocast.")] = True,
    backend: Annotated[
        str, typer.Option(help="Search backend: auto, cpu, emulate, cuda, torch.")
    ] = "auto",
    device: DeviceOpt = Device.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Train STAN (blind) on synthetic and real noise and write weights + manifest."""
    from snl_cli.console import FrameProgress, err_console, info
    from snl_cli.train import TrainOptions, budget_spent
    from snl_cli.train import train as run_training

    with cli_errors():
        try:
            widths = [int(c) for c in channels.split(",")]
        except ValueError:
            raise typer.BadParameter(f"expected integers like 16,32,64, got {channels!r}") from None
        try:
            blocks = [int(d) for d in depth.split(",")] if depth else []
        except ValueError:
            raise typer.BadParameter(
                f"--depth: expected integers like 1,2,3, got {depth!r}"
            ) from None
        if input_frames is not None and input_frames % 2 == 0:
            raise typer.BadParameter(f"--input-frames: expected an odd number, got {input_frames}")
        if search_window is not None and search_window % 2 == 0:
            raise typer.BadParameter(
                f"--search-window: expected an odd number, got {search_window}"
            )
        opts = TrainOptions(
            data=[str(p) for p in data],
            out=str(out),
            stills=[str(p) for p in stills or []],
            val=[str(p) for p in val or []],
            pairs=[str(p) for p in pairs or []],
            val_pairs=[str(p) for p in val_pairs or []],
            pair_share=pair_share,
            transfer_share=transfer_share,
            photo_share=photo_share,
            blotch_share=blotch_share,
            noise=noise,
            gaussian_share=gaussian_share,
            codec_share=codec_share,
            loss=loss,
            minutes=minutes,
            steps=steps,
            crop=crop,
            frames=frames,
            batch=batch,
            lr=lr,
            seed=seed,
            checkpoint=str(checkpoint) if checkpoint else None,
            val_minutes=val_minutes,
            init=str(init) if init else None,
            bf16=bf16,
            backend=backend,
            device=device.value,
            architecture={
                "channels": widths,
                "heads": heads,
                "attn_blocks": attn_blocks,
                "input_frames": input_frames or (None if init else 1),
                "level_input": level_input,
                "depth": blocks,
                "ws": search_window,
                "wt": search_frames,
            },
        )
        total = steps or int(minutes * 60)  # the bar counts steps, or seconds without --steps
        with FrameProgress("training", total=total, rate=False) as bar:
            done = [0]

            plain_log = not err_console.is_terminal

            def report(state, fields: dict) -> None:
                if plain_log and (state.step % 50 == 0 or 20 in fields or "real" in fields):
                    info(
                        f"step {state.step} min {state.minutes:.1f} loss {fields['loss']:.4f} "
                        f"lr {fields['lr']:.2e}"
                        + (
                            f" val20 {fields[20]:.2f} val40 {fields[40]:.2f}"
                            if 20 in fields
                            else ""
                        )
                        + (f" real {fields['real']:.2f}" if "real" in fields else "")
                    )
                spent = int(budget_spent(opts, state.step, state.minutes) * total)
                text = f"step {state.step} loss {fields.get('loss', 0):.4f}"
                if 20 in fields:
                    text += f" val σ20 {fields[20]:.2f} dB σ40 {fields[40]:.2f} dB"
                if "real" in fields:
                    text += f" real {fields['real']:.2f} dB"
                bar.set_description(text)
                bar.advance(max(spent - done[0], 0))
                done[0] = max(spent, done[0])

            manifest = run_training(opts, progress=report, command=_command_line())
        emit(
            manifest,
            as_json,
            lambda m: info(
                f"wrote {out} ({m['steps']} steps, {m['minutes']} min); val PSNR {m['val_psnr']}"
            ),
        )


def _command_line() -> str:
    """`snl train ...` as typed, for the manifest ("" when not run from a shell, e.g. tests)."""
    import shlex
    import sys

    argv = sys.argv[1:]
    return "snl " + shlex.join(argv) if argv[:1] == ["train"] else ""
