"""The denoisers `snl denoise --model NAME` can run, behind one small interface.

The pipeline (`snl_cli.pipeline`) cuts a clip into temporal chunks and spatial tiles and
hands each piece to a `Denoiser`; it needs to know nothing else about the method. A
denoiser says how many frames of temporal context it wants on each side of a chunk
(`context`), how many pixels of spatial context around a tile (`halo`) and roughly how
much memory one pixel of one frame costs while it runs (`bytes_per_pixel`, used to size
tiles), and whether it reads the noise level at all (`uses_sigma`: a blind model does not, and the
pipeline then skips estimating it).

Add a method: write a class with these attributes and `__call__`, then one branch in
`make_denoiser`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from snl_cli.errors import UsageError

if TYPE_CHECKING:  # torch loads when a denoiser is built, so that `snl --help` stays quick
    import torch
    from torch import Tensor

MODELS = ("stan", "nlm")  # the `--model` names, the only list of them


@runtime_checkable
class Denoiser(Protocol):
    """A video denoiser the pipeline can run chunk by chunk and tile by tile.

    Attributes:
        name: the `--model` name.
        context: frames of temporal context wanted on each side of a chunk. The output at t
            must depend only on the frames within context of t, or within 2·context near
            the clip's ends (`snl preview` computes only those).
        halo: pixels of spatial context wanted around a tile.
        bytes_per_pixel: peak working memory per pixel per frame of the processed piece.
        device: where the clip tensors passed in should live.
        uses_sigma: whether `__call__` reads `sigma`; a blind denoiser (False) is not given
            an estimate (see `uses_sigma`).
    """

    name: str
    context: int
    halo: int
    bytes_per_pixel: int
    device: torch.device
    uses_sigma: bool

    def __call__(self, clip: Tensor, sigma: float) -> Tensor:
        """Denoise a piece of a clip.

        Args:
            clip: (T, 3, H, W) float32 in [0, 1] on `device`, T ≥ 1.
            sigma: noise standard deviation on the 0–255 scale.

        Returns:
            (T, 3, H, W) float32 on `device`.
        """
        ...


class FrameStream(Protocol):
    """A denoiser's run over one clip, frame by frame (see `frame_stream`)."""

    def push(self, frame: Tensor) -> list[Tensor | None]:
        """Take the clip's next frame (3, H, W) float32 in [0, 1]; return the outputs
        (3, H, W) that it completes, in order (None: out of a focus, not computed)."""
        ...

    def close(self) -> list[Tensor | None]:
        """End the clip; return the outputs still to come."""
        ...


def offers_stream(denoiser: Denoiser) -> bool:
    """Whether `denoiser` runs one frame at a time (`frame_stream`); the pipeline then always
    streams: it is the faster and the smaller of the two ways at every size (a chunk window
    alone holds 40 frames of ~40 bytes per pixel, where a whole streamed run takes
    `stream_bytes_per_pixel` of one frame)."""
    return bool(getattr(denoiser, "offers_stream", False))


def frame_stream(
    denoiser: Denoiser, sigma: float, focus: tuple[int, int] | None = None
) -> FrameStream | None:
    """A run of `denoiser` over a clip one frame at a time, when it offers one
    (`offers_stream`): it computes what `__call__` computes on the whole clip, untiled, in
    the memory of a few frames (`stream_bytes_per_pixel` per pixel of one frame); None
    otherwise. `focus` (frame, frames): only that frame's output, of a clip of `frames`
    frames, is computed."""
    if not offers_stream(denoiser):
        return None
    return denoiser.stream(sigma, focus)  # type: ignore[attr-defined]


def resolve_device(device: str) -> torch.device:
    """ "auto" → CUDA when available, else CPU; "cuda" without a GPU is a usage error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device: expected auto, cpu or cuda, got {device!r}")
    return torch.device(device)


def uses_sigma(denoiser: Denoiser) -> bool:
    """Whether the pipeline must give `denoiser` a σ (estimated when not given); a denoiser
    that does not say is given one."""
    return bool(getattr(denoiser, "uses_sigma", True))


def default_model() -> str:
    """ "stan" when the shipped STAN weights are installed, else "nlm"."""
    from snl_cli.model.weights import default_weights_path

    return "stan" if default_weights_path().is_file() else "nlm"


def make_denoiser(
    name: str | None,
    *,
    device: torch.device | str = "cpu",
    weights: str | None = None,
) -> Denoiser:
    """Build the denoiser called `name`.

    Args:
        name: "stan" or "nlm"; None: `default_model()`.
        device: torch device (or "auto"/"cpu"/"cuda").
        weights: STAN weights file (None: the shipped ones).

    Raises:
        UsageError: unknown name or device.
        WeightsError: STAN weights missing or corrupt.
    """
    device = resolve_device(device) if isinstance(device, str) else device
    name = name or default_model()
    if name == "nlm":
        from snl_cli.nlm import NLMDenoiser

        return NLMDenoiser(device=device)
    if name == "stan":
        return _make_stan(device, weights)
    raise UsageError(f"--model: expected one of {', '.join(MODELS)}, got {name!r}")


# --- STAN -------------------------------------------------------------------------------
# The learned model. `load_stan` raises WeightsError (one line, exit 1) while no weights
# are installed; the wrapper below is the minimal glue and the place to refine it.


def _make_stan(device: torch.device, weights: str | None) -> Denoiser:
    from snl_cli.model.weights import load_stan

    model, manifest = load_stan(weights)
    return StanDenoiser(model.to(device), manifest, device)


class StanDenoiser:
    """STAN with DIS flows between consecutive noisy frames. Blind (`sigma` is ignored) unless
    the model reads a noise-level plane (`STANConfig.level_input`): then `sigma` is its level,
    the clip's `--sigma auto` estimate or the user's `--sigma`.

    Runs under `torch.inference_mode`, channels-last, with bfloat16 autocast for the
    convolutions on CPUs that have native bf16 (AVX512-BF16/AMX) and on CUDA; the search,
    gather and softmax stay in float32 inside the attention blocks.
    """

    name = "stan"
    uses_sigma = False
    halo = 32
    bytes_per_pixel = 400  # measured 348-403 (480x272, 480x544; 8, 16 frames), see defaults
    # of one frame, a streamed run's whole footprint besides the process: measured peaks of
    # `make bench-laptop` (0.4 GB of process): 1.22 GB at 960x540 (pooled heap), 2.55 GB at
    # 1920x1080 (mmap regime), see `memory.POOLED_BYTES_PER_PIXEL`
    stream_bytes_per_pixel = 1600
    # of that, what the stream keeps from frame to frame (every tile's, when tiled): the
    # frames and features of its temporal window, ~0.83 GB at 1920x1080, plus the frames
    # waiting in the pipeline
    stream_state_bytes_per_pixel = 500

    def __init__(
        self, model: torch.nn.Module, manifest: dict, device: torch.device, bf16: bool | None = None
    ) -> None:
        import torch

        self.model = model.to(memory_format=torch.channels_last).eval()
        self.manifest = manifest
        self.device = device
        self.context = model.cfg.context
        self.uses_sigma = bool(model.cfg.level_input)
        self.bf16 = bf16_supported(device) if bf16 is None else bf16

    @property
    def offers_stream(self) -> bool:
        """Streams on the CPU; on a GPU whole windows keep the device busy."""
        return self.device.type == "cpu"

    def stream(self, sigma: float, focus: tuple[int, int] | None = None) -> FrameStream:
        """The model run one frame at a time (`snl_cli.model.stream.STANStream`: the same
        outputs as `__call__` on the whole clip, in `stream_bytes_per_pixel` of one frame)."""
        from snl_cli.model.stream import STANStream

        return STANStream(self.model, level=float(sigma), bf16=self.bf16, focus=focus)

    def __call__(self, clip: Tensor, sigma: float) -> Tensor:
        import torch

        from snl_cli.flow import estimate_flows
        from snl_cli.heap import roomy_heap

        with torch.inference_mode(), roomy_heap():
            flows = None
            if self.model.cfg.attn_blocks:  # a plain UNet (no attention) needs no motion
                motion = estimate_flows(clip, downscale=self.model.flow_downscale)
                flows = tuple(f.unsqueeze(0) for f in motion)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                level = torch.tensor([float(sigma)]) if self.uses_sigma else None
                out = self.model(clip.unsqueeze(0), flows, level=level)
        return out[0].float().clamp(0, 1)


def bf16_supported(device: torch.device) -> bool:
    """bfloat16 autocast pays off: CUDA with bf16, or a CPU with native bf16 (oneDNN)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@contextmanager
def compile_notices(say: Callable[[str], None]) -> Iterator[None]:
    """While the block runs, `say` one line the first time numba compiles a kernel: a cache
    miss, i.e. the first run after an install or update (~15 s of CPU for STAN's kernels,
    which later runs load from numba's cache in well under a second of CPU)."""
    try:
        from numba.core import event
    except ImportError:  # numba missing: nothing compiles
        yield
        return

    class FirstCompile(event.Listener):
        told = False

        def on_start(self, ev: event.Event) -> None:
            if not self.told:
                self.told = True
                kernel = ev.data["dispatcher"].py_func
                say(
                    f"compiling the CPU kernels with numba ({kernel.__module__}."
                    f"{kernel.__name__} first): once after an install or update, ~15 s of "
                    "CPU; later runs load them from the cache"
                )

        def on_end(self, ev: event.Event) -> None:
            pass

    listener = FirstCompile()
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)
