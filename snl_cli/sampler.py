"""Training crops for `snl train`: clips decoded whole, and `ClipSampler`, which draws random
crops from footage, moving stills and real noisy/clean pairs (optionally moving the pairs'
real noise onto footage)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from snl_cli.clips import read_image, read_uint8
from snl_cli.errors import InputError, UsageError
from snl_cli.synthetic import random_codec
from snl_cli.video.images import IMAGE_SUFFIXES

PAIR_SHARE = 0.2  # default share of training clips drawn from real pairs when --pairs is given
TRANSFER_SHARE = 0.0  # default share of the other clips noised with real pairs' residuals


def load_clip(path: Path, max_frames: int | None = None) -> np.ndarray:
    """Decode a video file or frame folder into uint8 (T, H, W, 3)."""
    frames = read_uint8(path, stop=max_frames or None)
    if not frames:
        raise InputError("no frames", path)
    return np.stack(frames)


def load_stills(folder: Path) -> list[np.ndarray]:
    """Every image in a folder, each uint8 (H, W, 3)."""
    paths = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not paths:
        raise InputError("no images", folder)
    return [read_image(path) for path in paths]


class ClipSampler:
    """Random training crops: (clean) clips of `frames` frames, `crop` x `crop` pixels.

    Video clips give consecutive frames (random start, random direction); still images give
    clips whose camera moves smoothly (random velocity and acceleration, sub-pixel). Real pairs
    give a noisy/clean crop repeated over the frames (`pair_share` of the clips; a pair is drawn
    in proportion to its pixel count), and
    `transfer_share` of the other clips carry real noise: each frame gets the residual
    (noisy - clean) of its own random crop of one random pair, so the noise of a real camera
    meets footage and motion it was not shot with, independent from frame to frame;
    `codec_share` of those then go through a random codec (`random_codec`), as a phone's
    video of real sensor noise is compressed.
    """

    def __init__(
        self,
        clips: list[np.ndarray],
        stills: list[np.ndarray],
        frames: int,
        crop: int,
        rng: random.Random,
        pairs: list[tuple[np.ndarray, np.ndarray]] | None = None,
        pair_share: float = PAIR_SHARE,
        transfer_share: float = TRANSFER_SHARE,
        codec_share: float = 0.0,
    ) -> None:
        usable = [c for c in clips if c.shape[0] >= frames and min(c.shape[1:3]) >= crop]
        self.clips = usable
        self.stills = [s for s in stills if min(s.shape[:2]) >= crop + 16]
        self.pairs = [p for p in pairs or [] if min(p[0].shape[:2]) >= crop]
        # every pixel of the pairs equally likely: a 256x256 pair is drawn a quarter as often
        # as a 512x512 one, so sets of small crops do not outweigh sets of large ones
        self.pair_weights = [p[0].shape[0] * p[0].shape[1] for p in self.pairs]
        if not self.clips and not self.stills and not self.pairs:
            raise UsageError(f"no training clip has {frames} frames of at least {crop}x{crop}")
        self.frames, self.crop, self.rng = frames, crop, rng
        sizes = [c.shape[0] for c in self.clips]
        self.still_share = 0.0 if not self.stills else (0.25 if self.clips else 1.0)
        self.clip_weights = sizes
        self.pair_share = 0.0 if not self.pairs else (pair_share if usable or stills else 1.0)
        self.transfer_share = transfer_share if self.pairs else 0.0
        self.codec_share = codec_share

    def sample(self) -> tuple[Tensor, Tensor | None]:
        """A clean clip (frames, 3, crop, crop) float in [0, 1], and its real noisy version
        when it comes from a real pair (else None: noise is synthesised)."""
        rng = self.rng
        noisy = None
        if self.pairs and rng.random() < self.pair_share:
            clip, noisy = self._pair_crop(self._pair())
        elif self.stills and (not self.clips or rng.random() < self.still_share):
            clip = self._moving_still(rng.choice(self.stills))
        else:
            clip = self._video_crop(rng.choices(self.clips, weights=self.clip_weights)[0])
        if noisy is None and self.transfer_share and rng.random() < self.transfer_share:
            noisy = self._with_real_residuals(clip, self._pair())
            if self.codec_share and rng.random() < self.codec_share:
                noisy = random_codec(noisy, rng)
        for dim in (-1, -2, 0):
            if rng.random() < 0.5:
                clip = clip.flip(dim)
                noisy = noisy.flip(dim) if noisy is not None else None
        return clip, noisy

    def _pair(self) -> tuple[np.ndarray, np.ndarray]:
        """A random real pair, drawn in proportion to its pixel count."""
        return self.rng.choices(self.pairs, weights=self.pair_weights)[0]

    def _pair_crop(self, pair: tuple[np.ndarray, np.ndarray]) -> tuple[Tensor, Tensor]:
        H, W, _ = pair[0].shape
        y = self.rng.randrange(H - self.crop + 1)
        x = self.rng.randrange(W - self.crop + 1)
        clean, noisy = (
            torch.from_numpy(np.ascontiguousarray(img[y : y + self.crop, x : x + self.crop]))
            .permute(2, 0, 1)
            .float()
            .div(255)
            .expand(self.frames, -1, -1, -1)
            for img in (pair[1], pair[0])
        )
        return clean, noisy

    def _with_real_residuals(self, clip: Tensor, pair: tuple[np.ndarray, np.ndarray]) -> Tensor:
        """clip (T, 3, c, c) in [0, 1] plus, per frame, the residual of an independent random
        crop of `pair` (noisy, clean uint8 (H, W, 3)); clipped and quantised to 8 bits."""
        noisy_img, clean_img = pair
        H, W, _ = noisy_img.shape
        c = self.crop
        residuals = []
        for _ in range(clip.shape[0]):
            y, x = self.rng.randrange(H - c + 1), self.rng.randrange(W - c + 1)
            part = (slice(y, y + c), slice(x, x + c))
            residuals.append(noisy_img[part].astype(np.int16) - clean_img[part].astype(np.int16))
        residual = torch.from_numpy(np.stack(residuals)).permute(0, 3, 1, 2).float()
        return (clip * 255 + residual).round().clamp(0, 255) / 255

    def _video_crop(self, clip: np.ndarray) -> Tensor:
        T, H, W, _ = clip.shape
        t = self.rng.randrange(T - self.frames + 1)
        y = self.rng.randrange(H - self.crop + 1)
        x = self.rng.randrange(W - self.crop + 1)
        part = clip[t : t + self.frames, y : y + self.crop, x : x + self.crop]
        return torch.from_numpy(np.ascontiguousarray(part)).permute(0, 3, 1, 2).float() / 255

    def _moving_still(self, image: np.ndarray) -> Tensor:
        H, W, _ = image.shape
        rng, n, c = self.rng, self.frames, self.crop
        velocity = np.array([rng.uniform(-3, 3), rng.uniform(-3, 3)])
        accel = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)])
        path = np.array([velocity * i + 0.5 * accel * i * i for i in range(n)])
        path -= path.min(0)
        span = path.max(0)
        room = np.array([H - c - 1, W - c - 1]) - span
        if (room < 0).any():
            path *= 0
            room = np.array([H - c - 1, W - c - 1])
        start = np.array([rng.uniform(0, room[0]), rng.uniform(0, room[1])])
        img = torch.from_numpy(image).permute(2, 0, 1).float().unsqueeze(0) / 255
        ys = torch.arange(c, dtype=torch.float32)
        crops = []
        for dy, dx in path + start:
            gy = (ys + dy) / (H - 1) * 2 - 1
            gx = (ys + dx) / (W - 1) * 2 - 1
            grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1).unsqueeze(0)
            crops.append(F.grid_sample(img, grid, mode="bilinear", align_corners=True)[0])
        return torch.stack(crops)
