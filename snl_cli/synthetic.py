"""Synthetic noise: the one home of every noise snl adds to clean footage.

Used by `snl train` (random mixtures) and `snl bench denoise --noise` (fixed, seeded kinds).

Two families:
- **Gaussian**: i.i.d. N(0, sigma²) on sRGB values (sigma on the 0-255 scale).
- **Camera**: a simulated camera pipeline run backwards and forwards, after Brooks et al.,
  "Unprocessing images for learned raw denoising" (CVPR 2019): sRGB -> linear light ->
  inverse colour matrix and white balance (camera RGB) -> Bayer mosaic (RGGB) ->
  Poisson-Gaussian noise (variance = shot·x + read, per photosite) -> bilinear demosaic ->
  white balance and colour matrix -> sRGB gamma, with values below black clipped before it
  or kept through it (`CameraNoise.black_clip`) -> optional in-camera chroma smoothing, denoise and
  sharpening -> 8 bits -> optional compression through a real codec (JPEG per
  frame with OpenCV, H.264 over the clip with PyAV/libx264).
Noise is drawn independently for every frame; only the codec couples frames.

Clips are float tensors (T, 3, H, W) in [0, 1]; every function returns a new tensor of that
shape quantised to 8 bits (k/255), as a decoded 8-bit video would be.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

NOISE_KINDS = ("gaussian", "camera", "mix")
"""What `snl train --noise` accepts: Gaussian only, camera only, or a mixture of both."""

BENCH_KINDS = ("gaussian", "shot", "demosaic", "lowlight", "x264", "hevc", "jpeg", "camera")
"""What `snl bench denoise --noise` accepts (see `bench_degradation`)."""

# Brooks et al.: log(shot) ~ U[log 1e-4, log 0.012]; log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26)
SHOT_RANGE = (1e-4, 0.012)
WB_RED, WB_BLUE = (1.9, 2.4), (1.5, 1.9)
MID_GREY = 0.2140  # linear value of sRGB 0.5
# training codecs: x264 crf ~ U[16, 30], x265 (HEVC, as phones record) crf ~ U[20, 34] (its
# default 28 looks like x264's 23), JPEG quality 60-95
VIDEO_CRF = {"x264": (16.0, 30.0), "hevc": (20.0, 34.0)}
JPEG_QUALITY = (60, 95)
# `random_camera`: the share of cameras clipping below black before the gamma curve, and the
# blur (px) and remaining std share of a blotchy camera's noise (`CameraNoise.blotch`)
BLACK_CLIP_SHARE = 0.5
BLOTCH_SIGMA, BLOTCH_LEVEL = (0.8, 2.5), (0.3, 1.0)
BENCH_CRF = {"x264": 23.0, "hevc": 28.0}  # `snl bench denoise --noise x264|hevc`: the defaults


# ----------------------------------------------------------------------------- colour


def srgb_to_linear(x: Tensor) -> Tensor:
    """The sRGB transfer function inverted (IEC 61966-2-1), elementwise on [0, 1]."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: Tensor) -> Tensor:
    """The sRGB transfer function, elementwise; clamps to [0, 1]."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def signed_linear_to_srgb(x: Tensor) -> Tensor:
    """The sRGB transfer function extended to negative values as an odd function, so that
    noise below black stays below black (clamped to [-1, 1])."""
    return torch.sign(x) * linear_to_srgb(x.abs())


def random_cam2rgb(rng: random.Random) -> Tensor:
    """A camera-RGB -> sRGB matrix like those of real sensors: rows sum to 1, a dominant
    diagonal of 1.3-2.1 and negative off-diagonals (they amplify and mix the noise)."""
    m = torch.zeros(3, 3, dtype=torch.float64)
    for i in range(3):
        diag = rng.uniform(1.3, 2.1)
        share = rng.uniform(0.2, 0.8)
        off = [j for j in range(3) if j != i]
        m[i, i] = diag
        m[i, off[0]] = -(diag - 1) * share
        m[i, off[1]] = -(diag - 1) * (1 - share)
    return m.float()


def _apply_matrix(x: Tensor, m: Tensor) -> Tensor:
    """(T, 3, H, W) with a 3x3 colour matrix applied to each pixel."""
    return torch.einsum("ij,tjhw->tihw", m.to(x), x)


# ----------------------------------------------------------------------------- mosaic


def mosaic(x: Tensor) -> Tensor:
    """RGGB Bayer samples of (T, 3, H, W): (T, 1, H, W), each site keeping its own colour."""
    out = x[:, 1:2].clone()  # green everywhere, then red and blue sites
    out[:, 0, 0::2, 0::2] = x[:, 0, 0::2, 0::2]
    out[:, 0, 1::2, 1::2] = x[:, 2, 1::2, 1::2]
    return out


def bayer_masks(height: int, width: int) -> Tensor:
    """(3, H, W) 0/1 masks of the R, G, B sites of an RGGB mosaic."""
    masks = torch.zeros(3, height, width)
    masks[0, 0::2, 0::2] = 1
    masks[1, 0::2, 1::2] = 1
    masks[1, 1::2, 0::2] = 1
    masks[2, 1::2, 1::2] = 1
    return masks


def demosaic(raw: Tensor) -> Tensor:
    """Bilinear demosaic of an RGGB mosaic (T, 1, H, W) -> (T, 3, H, W).

    Each missing value is the mean of its nearest same-colour sites, so noise of one site
    spreads over its neighbours and, through green, across channels.
    """
    _, _, H, W = raw.shape
    masks = bayer_masks(H, W).to(raw)
    kernel_rb = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    kernel_g = torch.tensor([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])
    weights = torch.stack([kernel_rb, kernel_g, kernel_rb]).unsqueeze(1).to(raw)
    sparse = raw * masks  # (T, 3, H, W): each channel only on its sites
    padded = F.pad(sparse, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(padded, weights, groups=3)


# ----------------------------------------------------------------------------- filters


def _blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (T, C, H, W), reflect borders (radius 2.5 sigma, at most
    the frame allows)."""
    radius = min(max(1, math.ceil(2.5 * sigma)), x.shape[-1] - 1, x.shape[-2] - 1)
    if radius < 1:
        return x
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-0.5 * (taps / sigma) ** 2)
    g = (g / g.sum()).to(x)
    C = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


_RGB2YCC = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)


def smooth_chroma(x: Tensor, sigma: float) -> Tensor:
    """Blur only the chroma (BT.601 Cb, Cr) of sRGB (T, 3, H, W), as cameras' chroma noise
    reduction does: fine colour speckle becomes low-frequency colour blotches."""
    ycc = _apply_matrix(x, _RGB2YCC)
    ycc = torch.cat([ycc[:, :1], _blur(ycc[:, 1:], sigma)], 1)
    return _apply_matrix(ycc, torch.linalg.inv(_RGB2YCC))


def quantise(x: Tensor) -> Tensor:
    """Clip to [0, 1] and round to 8 bits."""
    return torch.round(x.clamp(0, 1) * 255) / 255


# ----------------------------------------------------------------------------- codecs


def jpeg(clip: Tensor, quality: int) -> Tensor:
    """Each frame through OpenCV's JPEG encoder and decoder (4:2:0, like cameras)."""
    import cv2

    out = []
    for frame in clip:
        rgb = np.rint(frame.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
        ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        out.append(torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1))
    return torch.stack(out).float() / 255


def encode_video(clip: Tensor, crf: float, codec: str = "x264", preset: str = "veryfast") -> Tensor:
    """The whole clip through a video encoder (yuv420p, in memory) and back, frame for frame.

    codec: "x264" (libx264, tune zerolatency: no B-frames, as a live or phone stream) or
    "hevc" (libx265 with its B-frames, as phones record; `video.plan.x265_params`). Odd sizes
    are padded by edge replication for the encoder and cropped after decoding.
    """
    import av

    from snl_cli.video.plan import x265_params

    T, _, H, W = clip.shape
    ph, pw = H % 2, W % 2
    rgb = np.rint(clip.permute(0, 2, 3, 1).clamp(0, 1).numpy() * 255).astype(np.uint8)
    if ph or pw:
        rgb = np.pad(rgb, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    options = {"crf": f"{crf:g}", "preset": preset}
    if codec == "x264":
        options["tune"] = "zerolatency"
    elif codec == "hevc":
        options["x265-params"] = x265_params(W + pw, H + ph)
    else:
        raise ValueError(f"unknown video codec {codec!r}; choose from {', '.join(VIDEO_CRF)}")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream("libx264" if codec == "x264" else "libx265", rate=25)
        stream.width, stream.height, stream.pix_fmt = W + pw, H + ph, "yuv420p"
        stream.options = options
        stream.codec_context.color_range = 1  # limited ("tv"), as cameras write
        for i, image in enumerate(rgb):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU601", dst_color_range="MPEG"
            )
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    buffer.seek(0)
    frames = []
    with av.open(buffer, "r") as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(
                format="rgb24", src_colorspace="ITU601", src_color_range="MPEG"
            )
            frames.append(torch.from_numpy(image[:H, :W].copy()))
    if len(frames) != T:
        raise RuntimeError(f"{codec} round trip returned {len(frames)} of {T} frames")
    return torch.stack(frames).permute(0, 3, 1, 2).float() / 255


# ----------------------------------------------------------------------------- noise


def gaussian(
    clip: Tensor, sigma: float | Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """i.i.d. Gaussian noise of std sigma (0-255 scale), quantised to 8 bits.

    Args:
        clip: any shape in [0, 1], e.g. (T, 3, H, W) or a batch (B, T, 3, H, W);
        sigma: a number, or a (B,) tensor with one sigma per leading item.
    """
    noise = torch.randn(clip.shape, generator=generator, dtype=clip.dtype).to(clip.device)
    if isinstance(sigma, Tensor):
        sigma = sigma.to(clip).view(-1, *([1] * (clip.dim() - 1)))
    return quantise(clip + noise * (sigma / 255))


def poisson_gaussian(
    linear: Tensor, shot: float, read: float, generator: torch.Generator | None = None
) -> Tensor:
    """Signal-dependent noise in linear light: variance shot·x + read (x in [0, 1]).

    The shot part is a true Poisson count of x/shot photons, scaled back, so its variance
    is shot·x; the read part is Gaussian. Values may leave [0, 1] (a sensor's black level
    keeps negative read noise); clipping happens at the 8-bit output.
    """
    photons = torch.poisson((linear.clamp_min(0) / shot).float(), generator=generator)
    read_noise = torch.randn(linear.shape, generator=generator).to(linear) * math.sqrt(read)
    return photons.to(linear) * shot + read_noise


@dataclass(frozen=True)
class CameraNoise:
    """One camera's pipeline and noise levels (linear variances on the [0, 1] scale)."""

    shot: float = 0.002
    read: float = 1e-5
    gain: float = 1.0  # digital gain of a low-light shot: variance becomes gain·shot·x + gain²·read
    red_gain: float = 2.1
    blue_gain: float = 1.7
    cam2rgb: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    bayer: bool = True
    chroma_blur: float = 0.0  # sigma (px) of in-camera chroma smoothing, 0 = none
    denoise: float = 0.0  # share of a 1 px blur blended in (in-camera luma denoise), 0..1
    sharpen: float = 0.0  # unsharp-mask amount, 0 = none
    # True: values below black are clipped in linear light, before the gamma curve (an ISP
    # that clips after subtracting the black level: strong noise brightens the shadows);
    # False: they stay below black through the gamma curve, clipped only at the 8-bit output
    black_clip: bool = True
    # sigma (px) of the blur a phone's own noise reduction leaves on the noise: its fine grain
    # gone, blotches of a few pixels kept at `blotch_level` times the noise's std; 0 = none
    blotch: float = 0.0
    blotch_level: float = 1.0
    jpeg_quality: int | None = None
    crf: float | None = None  # the clip through `codec` at this crf, None = no video codec
    codec: str = "x264"  # "x264" or "hevc" (see `encode_video`)

    def apply(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Degrade a clean clip (T, 3, H, W) in [0, 1]; returns its noisy 8-bit version."""
        m = torch.tensor(self.cam2rgb, dtype=torch.float32)
        wb = torch.tensor([self.red_gain, 1.0, self.blue_gain]).view(1, 3, 1, 1)
        cam = _apply_matrix(srgb_to_linear(clip), torch.linalg.inv(m)) / wb
        cam = clean_cam = cam.clamp(0, 1)
        raw = mosaic(cam) if self.bayer else cam
        raw = poisson_gaussian(raw / self.gain, self.shot, self.read, generator) * self.gain
        cam = demosaic(raw) if self.bayer else raw
        rgb = _apply_matrix(cam * wb, m)
        rgb = linear_to_srgb(rgb) if self.black_clip else signed_linear_to_srgb(rgb)
        if self.blotch > 0:
            rgb = self._blotchy(rgb, linear_to_srgb(_apply_matrix(clean_cam * wb, m)))
        if self.chroma_blur > 0:
            rgb = smooth_chroma(rgb, self.chroma_blur)
        if self.denoise > 0:
            rgb = (1 - self.denoise) * rgb + self.denoise * _blur(rgb, 1.0)
        if self.sharpen > 0:
            rgb = rgb + self.sharpen * (rgb - _blur(rgb, 1.0))
        noisy = quantise(rgb)
        if self.jpeg_quality is not None:
            noisy = jpeg(noisy, self.jpeg_quality)
        if self.crf is not None:
            noisy = encode_video(noisy, self.crf, self.codec)
        return noisy

    def _blotchy(self, rgb: Tensor, clean: Tensor) -> Tensor:
        """rgb's noise (rgb - clean, (T, 3, H, W)) blurred by `blotch` px and rescaled to
        `blotch_level` times its std; each channel keeps its mean (the gamma curve's bias)."""
        noise = rgb - clean
        blurred = _blur(noise, self.blotch)
        mean = blurred.mean(dim=(0, 2, 3), keepdim=True)
        scale = self.blotch_level * noise.std() / (blurred - mean).std().clamp_min(1e-12)
        return clean + mean + (blurred - mean) * scale


def read_for_shot(shot: float, jitter: float = 0.0) -> float:
    """Brooks et al.'s read-noise variance for a shot-noise level (their log-linear fit)."""
    return math.exp(2.18 * math.log(shot) + 1.20 + jitter)


def random_camera(
    rng: random.Random, low_light: bool | None = None, blotch_share: float = 0.0
) -> CameraNoise:
    """A random camera, ISO and processing: levels after Brooks et al., widened at the top
    (shot up to 0.02) and, for a low-light shot, a digital gain of 1-8 on top; `blotch_share`
    of them leave the noise blotchy (BLOTCH_SIGMA, BLOTCH_LEVEL; no draw at 0)."""
    shot = math.exp(rng.uniform(math.log(SHOT_RANGE[0]), math.log(0.02)))
    read = read_for_shot(shot, rng.gauss(0.0, 0.26))
    if low_light is None:
        low_light = rng.random() < 0.25
    codec = rng.random()
    video = "hevc" if rng.random() < 0.4 else "x264"
    camera = CameraNoise(
        shot=shot,
        read=read,
        gain=math.exp(rng.uniform(0.0, math.log(8.0))) if low_light else 1.0,
        red_gain=rng.uniform(*WB_RED),
        blue_gain=rng.uniform(*WB_BLUE),
        cam2rgb=tuple(tuple(row) for row in random_cam2rgb(rng).tolist()),
        bayer=rng.random() < 0.85,
        chroma_blur=rng.uniform(0.5, 3.0) if rng.random() < 0.4 else 0.0,
        denoise=rng.uniform(0.1, 0.6) if rng.random() < 0.3 else 0.0,
        sharpen=rng.uniform(0.1, 0.8) if rng.random() < 0.3 else 0.0,
        black_clip=rng.random() < BLACK_CLIP_SHARE,
        jpeg_quality=rng.randint(*JPEG_QUALITY) if codec < 0.3 else None,
        crf=rng.uniform(*VIDEO_CRF[video]) if 0.3 <= codec < 0.55 else None,
        codec=video,
    )
    if blotch_share and rng.random() < blotch_share:
        blotch, level = rng.uniform(*BLOTCH_SIGMA), rng.uniform(*BLOTCH_LEVEL)
        camera = replace(camera, blotch=blotch, blotch_level=level)
    return camera


@dataclass(frozen=True)
class Mixture:
    """How `degrade` draws a training degradation.

    gaussian_share: share of Gaussian clips under kind "mix" (camera noise otherwise);
    codec_share: share of Gaussian clips then compressed (`random_codec`), as noisy video
    re-encoded by a phone, an editor or a streaming service is; camera clips draw their own
    codec in `random_camera`; blotch_share: share of camera clips whose noise is left blotchy.
    """

    gaussian_share: float = 1 / 3
    codec_share: float = 0.0
    blotch_share: float = 0.0


def random_codec(noisy: Tensor, rng: random.Random) -> Tensor:
    """noisy (T, 3, H, W) through a random codec: over the clip, x264 (40%) or HEVC (27%) at a
    crf in VIDEO_CRF; JPEG at a quality in JPEG_QUALITY per frame otherwise."""
    draw = rng.random()
    if draw < 2 / 3:
        codec = "x264" if draw < 0.4 else "hevc"
        return encode_video(noisy, rng.uniform(*VIDEO_CRF[codec]), codec)
    return jpeg(noisy, rng.randint(*JPEG_QUALITY))


def degrade(
    clip: Tensor,
    kind: str,
    rng: random.Random,
    sigma_max: float = 50.0,
    mixture: Mixture = Mixture(),
) -> tuple[Tensor, str]:
    """A random degradation of a clean clip for training.

    Args:
        clip: (T, 3, H, W) in [0, 1]; kind: one of NOISE_KINDS ("mix" is Gaussian
        `mixture.gaussian_share` of the time, camera noise otherwise).

    Returns:
        (noisy clip of the same shape, the family drawn: "gaussian", "gaussian+codec" or
        "camera").
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    generator = torch.Generator().manual_seed(rng.getrandbits(63))
    if kind == "gaussian" or (kind == "mix" and rng.random() < mixture.gaussian_share):
        noisy = gaussian(clip, rng.uniform(0, sigma_max), generator)
        if mixture.codec_share and rng.random() < mixture.codec_share:
            return random_codec(noisy, rng), "gaussian+codec"
        return noisy, "gaussian"
    camera = random_camera(rng, blotch_share=mixture.blotch_share)
    return camera.apply(clip, generator), "camera"


# ----------------------------------------------------------------------------- benchmarks


def calibrated(camera: CameraNoise, sigma: float) -> CameraNoise:
    """`camera` with shot and read scaled together so that its raw-to-sRGB noise (before any
    digital gain, in-camera filtering or codec) has std sigma (0-255) on a mid-grey frame,
    measured."""
    bare = replace(camera, chroma_blur=0.0, denoise=0.0, sharpen=0.0, gain=1.0)
    bare = replace(bare, jpeg_quality=None, crf=None)
    grey = torch.full((1, 3, 128, 128), 0.5)
    scale = 1.0
    for _ in range(3):  # the gamma curve bends strong noise: refine at the target level
        probe = replace(bare, shot=bare.shot * scale, read=bare.read * scale)
        generator = torch.Generator().manual_seed(0)
        measured = float((probe.apply(grey, generator) - grey).std()) * 255
        if measured <= 0:
            break
        scale *= (sigma / measured) ** 2
    return replace(camera, shot=camera.shot * scale, read=camera.read * scale)


def bench_degradation(kind: str, sigma: float) -> CameraNoise | None:
    """The fixed degradation `snl bench denoise --noise KIND --sigma S` applies. The camera
    kinds are scaled so their noise, before in-camera filtering and codecs, has std sigma at
    mid-grey (`calibrated`), 80% of its variance from shot noise there.

    - gaussian: i.i.d. Gaussian of std sigma (returns None: use `gaussian`);
    - shot: Poisson-Gaussian in linear light, no mosaic;
    - demosaic: the same noise on an RGGB mosaic, demosaicked, with white balance and a
      colour matrix (spatially and cross-channel correlated);
    - lowlight: the demosaic camera shooting 2x underexposed and gained back (read noise
      dominates the shadows, as in a night clip), chroma smoothing as phones do;
    - x264: Gaussian of std sigma, then the clip through x264 at crf 23;
    - hevc: Gaussian of std sigma, then the clip through x265 (HEVC) at crf 28, its default;
    - jpeg: the demosaic camera, then JPEG quality 80 per frame;
    - camera: the demosaic camera with chroma smoothing, sharpening and x264 at crf 23.
    """
    if kind not in BENCH_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(BENCH_KINDS)}")
    if kind in ("gaussian", *BENCH_CRF):
        return None
    cam = CameraNoise(
        shot=0.8e-3 / MID_GREY,
        read=0.2e-3,
        cam2rgb=((1.75, -0.55, -0.2), (-0.25, 1.6, -0.35), (0.05, -0.6, 1.55)),
    )
    if kind == "shot":
        cam = replace(cam, bayer=False, cam2rgb=CameraNoise.cam2rgb, red_gain=1.0, blue_gain=1.0)
    elif kind == "lowlight":
        cam = replace(cam, gain=2.0, chroma_blur=1.5)
    elif kind == "jpeg":
        cam = replace(cam, jpeg_quality=80)
    elif kind == "camera":
        cam = replace(cam, chroma_blur=1.5, sharpen=0.3, crf=BENCH_CRF["x264"])
    return calibrated(cam, sigma)


def bench_noisy(clip: Tensor, kind: str, sigma: float, seed: int) -> Tensor:
    """Seeded noisy version of a clean clip (T, 3, H, W) for `snl bench denoise --noise`."""
    generator = torch.Generator().manual_seed(seed)
    camera = bench_degradation(kind, sigma)
    if camera is not None:
        return camera.apply(clip, generator)
    noisy = gaussian(clip, sigma, generator)
    return encode_video(noisy, BENCH_CRF[kind], kind) if kind in BENCH_CRF else noisy


def noisy_frames(clean: list[np.ndarray], kind: str, sigma: float, seed: int) -> list[np.ndarray]:
    """`bench_noisy` on uint8 RGB frames (H, W, 3): the noisy frames, uint8.

    Gaussian noise is drawn with NumPy's generator (the benchmark's noise since its first
    release, so that its tables stay comparable); the other kinds go through `bench_noisy`.
    """
    if kind == "gaussian":
        rng = np.random.default_rng(seed)
        return [
            np.clip(np.rint(f + rng.normal(0.0, sigma, f.shape)), 0, 255).astype(np.uint8)
            for f in clean
        ]
    clip = torch.from_numpy(np.stack(clean)).permute(0, 3, 1, 2).float() / 255
    noisy = bench_noisy(clip, kind, sigma, seed)
    out = torch.round(noisy * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return list(np.ascontiguousarray(out))
