"""User controls applied after any denoiser: strength, luma/chroma, grain.

Model-agnostic post-processing on (input, denoised) pairs of float RGB frames, so the
controls work whatever network ships:

- strength / luma / chroma: the output moves from the input (0) to the full denoise (1),
  separately for the luma and the two chroma components of the clip's own YUV matrix
  (BT.601, BT.709, BT.2020, as tagged; see `matrix_of`). The split is linear in RGB:
  out = input + A·(denoised − input) with A = M⁻¹·diag(luma, chroma, chroma)·M, M the
  RGB→YCbCr matrix, so chroma-only leaves Y = Kr·R + Kg·G + Kb·B exactly unchanged (up to
  the final clip to [0, 1]). Range scaling (tv/pc) is per component and cancels in A.
- grain: keeps a share G of the fine-scale residual, the high-pass of (input − output)
  (residual minus its Gaussian blur of `GRAIN_SIGMA` pixels): out += G·HP(input − out).
  Its transfer function is G·(1 − exp(−2π²σ²f²)) at spatial frequency f (cycles/pixel).

Arrays are (..., H, W, 3) float32 in [0, 1]; the leading axes (frames) are optional.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# (Kr, Kb) of the YUV matrices swscale knows, by its names (see video.colour.sws_matrix).
MATRIX_WEIGHTS = {
    "ITU601": (0.299, 0.114),
    "ITU709": (0.2126, 0.0722),
    "BT2020": (0.2627, 0.0593),
    "SMPTE240M": (0.212, 0.087),
    "FCC": (0.30, 0.11),
}
# Fine scale for --grain: σ of the Gaussian whose blur is taken out of the residual. At
# 1.5 px the high-pass keeps 50 % of the residual's amplitude at 0.125 cycles/px, 94 %
# at 0.25 and ~100 % at Nyquist: pixel-scale grain, not blotches.
GRAIN_SIGMA = 1.5


@dataclass(frozen=True)
class Controls:
    """How far the output moves towards the denoise, per component, and grain kept.

    Attributes:
        strength: 0 (the input) to 1 (the full denoise); the default of luma and chroma.
        luma: strength for Y (None: `strength`).
        chroma: strength for Cb and Cr (None: `strength`).
        grain: share 0..1 of the fine-scale residual put back.
        matrix: swscale name of the clip's YUV matrix ("ITU601", "ITU709", "BT2020", ...).
    """

    strength: float = 1.0
    luma: float | None = None
    chroma: float | None = None
    grain: float = 0.0
    matrix: str = "ITU601"

    @property
    def luma_strength(self) -> float:
        return self.strength if self.luma is None else self.luma

    @property
    def chroma_strength(self) -> float:
        return self.strength if self.chroma is None else self.chroma

    @property
    def is_identity(self) -> bool:
        """True when the output is the denoise unchanged (today's behaviour)."""
        return self.luma_strength == 1.0 and self.chroma_strength == 1.0 and self.grain == 0.0

    def to_json(self) -> dict[str, float | str]:
        """The effective values, for summaries: luma, chroma, grain, matrix."""
        return {"luma": self.luma_strength, "chroma": self.chroma_strength,
                "grain": self.grain, "matrix": self.matrix}  # fmt: skip

    def describe(self) -> str:
        """Short label naming the non-default controls, e.g. "luma 0.5, chroma 1, grain 0.2"."""
        parts = []
        if self.luma_strength == self.chroma_strength:
            if self.luma_strength != 1.0:
                parts.append(f"strength {self.luma_strength:g}")
        else:
            parts.append(f"luma {self.luma_strength:g}, chroma {self.chroma_strength:g}")
        if self.grain:
            parts.append(f"grain {self.grain:g}")
        return ", ".join(parts) or "strength 1"


def check_controls(controls: Controls) -> list[str]:
    """Problems with the values, as "--flag: expected ..., got ..." messages (empty: fine)."""
    problems = []
    for flag, value in (("--strength", controls.strength), ("--luma", controls.luma),
                        ("--chroma", controls.chroma), ("--grain", controls.grain)):  # fmt: skip
        if value is not None and not (0.0 <= value <= 1.0):
            problems.append(f"{flag}: expected a number in [0, 1], got {value:g}")
    if controls.matrix not in MATRIX_WEIGHTS:
        problems.append(f"unknown YUV matrix {controls.matrix!r}")
    return problems


def matrix_of(space: str | None) -> str:
    """swscale matrix name for a clip's colour-space tag (BT.601 when untagged or RGB)."""
    from snl_cli.video.colour import sws_matrix

    return sws_matrix({"space": space})


def rgb_to_ycbcr_matrix(matrix: str) -> np.ndarray:
    """(3, 3) M with (Y, Cb, Cr) = M·(R, G, B), full range, Cb/Cr in [−0.5, 0.5]."""
    kr, kb = MATRIX_WEIGHTS[matrix]
    kg = 1.0 - kr - kb
    return np.array(
        [
            [kr, kg, kb],
            [-0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5],
            [0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)],
        ]
    )


def blend_matrix(luma: float, chroma: float, matrix: str) -> np.ndarray:
    """(3, 3) A = M⁻¹·diag(luma, chroma, chroma)·M acting on RGB differences."""
    m = rgb_to_ycbcr_matrix(matrix)
    return np.linalg.inv(m) @ np.diag([luma, chroma, chroma]) @ m


def blend(noisy: np.ndarray, denoised: np.ndarray, controls: Controls) -> np.ndarray:
    """input + A·(denoised − input): per-component strength in the clip's YUV matrix.

    Args:
        noisy, denoised: (..., H, W, 3) float in [0, 1].

    Returns:
        (..., H, W, 3) float32, not clipped.
    """
    noisy = np.asarray(noisy, dtype=np.float32)
    diff = np.asarray(denoised, dtype=np.float32) - noisy
    luma, chroma = controls.luma_strength, controls.chroma_strength
    if luma == chroma:
        return noisy + np.float32(luma) * diff
    a = blend_matrix(luma, chroma, controls.matrix).astype(np.float32)
    return noisy + diff @ a.T


def fine_residual(noisy: np.ndarray, out: np.ndarray, sigma: float = GRAIN_SIGMA) -> np.ndarray:
    """High-pass of (noisy − out): the residual minus its Gaussian blur (reflected edges).

    Args:
        noisy, out: (..., H, W, 3) float.

    Returns:
        (..., H, W, 3) float32.
    """
    residual = np.asarray(noisy, dtype=np.float32) - np.asarray(out, dtype=np.float32)
    flat = residual.reshape(-1, *residual.shape[-3:])
    low = np.stack([cv2.GaussianBlur(r, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
                    for r in flat])  # fmt: skip
    return (flat - low).reshape(residual.shape)


def apply_controls(noisy: np.ndarray, denoised: np.ndarray, controls: Controls) -> np.ndarray:
    """The output frame(s) for these controls: blend, then grain, then clip to [0, 1].

    Args:
        noisy: the input, (..., H, W, 3) float in [0, 1].
        denoised: the denoiser's output, same shape.

    Returns:
        (..., H, W, 3) float32 in [0, 1]; `denoised` itself when the controls are identity.
    """
    if controls.is_identity:
        return denoised
    out = blend(noisy, denoised, controls)
    if controls.grain:
        out += np.float32(controls.grain) * fine_residual(noisy, out)
    return np.clip(out, 0.0, 1.0, out=out)
