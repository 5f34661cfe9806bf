"""Training pieces: noise model, loss, a few steps lowering the loss, moving stills."""

from __future__ import annotations

import random

import numpy as np
import torch

from snl_cli.model.stan import STAN, STANConfig
from snl_cli.synthetic import gaussian as add_noise
from snl_cli.train import (
    ClipSampler,
    TrainOptions,
    budget_spent,
    charbonnier,
    train_step,
)

SMALL = STANConfig(channels=(8, 16), heads=2, qk_dim=4, attn_blocks=1, ws=3, topk=4, k_agg=2)


def test_add_noise_level_and_quantisation() -> None:
    clean = torch.full((1, 2, 3, 64, 64), 0.5)
    noisy = add_noise(clean, torch.tensor([20.0]), torch.Generator().manual_seed(0))
    assert torch.allclose(noisy * 255, torch.round(noisy * 255))
    assert abs((noisy - clean).std().item() * 255 - 20) < 0.5


def test_loss_is_sqrt_mse_plus_eps() -> None:
    a, b = torch.zeros(4), torch.full((4,), 0.1)
    assert abs(charbonnier(a, b).item() - (0.01 + 1e-6) ** 0.5) < 1e-7


def test_budget_is_whichever_of_minutes_and_steps_runs_out_first() -> None:
    by_time = TrainOptions(data=[], out="w", minutes=10)
    assert budget_spent(by_time, step=10**6, minutes=2.5) == 0.25  # no step budget
    both = TrainOptions(data=[], out="w", minutes=10, steps=100)
    assert budget_spent(both, step=50, minutes=2.5) == 0.5
    assert budget_spent(both, step=10, minutes=7.5) == 0.75
    assert budget_spent(both, step=400, minutes=1.0) == 1.0


def test_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = STAN(SMALL)
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)
    y, x = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 24), indexing="ij")
    clean = torch.stack([torch.stack([y, x, (x + y) / 2])] * 3).unsqueeze(0)
    noisy = add_noise(clean, torch.tensor([30.0]), torch.Generator().manual_seed(1))
    from snl_cli.search import api

    noisy_loss = charbonnier(noisy, clean).item()
    losses = []
    for _ in range(30):
        with torch.no_grad():
            losses.append(charbonnier(model(noisy, backend="torch"), clean).item())
        train_step_torch(model, optim, clean, noisy, api)
    assert abs(losses[0] - noisy_loss) < 1e-6  # the untrained model is the identity
    assert losses[-1] < 0.85 * noisy_loss


def train_step_torch(model, optim, clean, noisy, api) -> None:
    """train_step with the search forced onto the torch reference (no numba JIT in this test)."""
    original = api.pick_backend
    api.pick_backend = lambda name, device: original("torch", device)
    try:
        train_step(model, optim, clean, noisy, flow_fn=None, bf16=False)
    finally:
        api.pick_backend = original


def test_moving_still_clip_moves() -> None:
    rng = np.random.default_rng(0)
    image = (rng.random((80, 90, 3)) * 255).astype(np.uint8)
    sampler = ClipSampler([], [image], frames=4, crop=32, rng=random.Random(3))
    clip = sampler._moving_still(image)
    assert clip.shape == (4, 3, 32, 32)
    assert (clip[0] - clip[-1]).abs().mean() > 0.01


def _is_crop_of(frame: np.ndarray, field: np.ndarray) -> bool:
    """frame (c, c, 3) equals some crop of field (H, W, 3), flipped in any of the two axes."""
    c = frame.shape[0]
    H, W, _ = field.shape
    for flipped in (field, field[::-1], field[:, ::-1], field[::-1, ::-1]):
        for y in range(H - c + 1):
            for x in range(W - c + 1):
                if np.array_equal(flipped[y : y + c, x : x + c], frame):
                    return True
    return False


def _flat_pair_and_video(size: int, seed: int) -> tuple[np.ndarray, tuple, np.ndarray]:
    """A real pair whose residual is a known random field (size, size, 3) in -20..20, and a
    flat grey video (6, 48, 48, 3) to move its noise onto: (field, (noisy, clean), video)."""
    clean = np.full((size, size, 3), 100, np.uint8)
    field = np.random.default_rng(seed).integers(-20, 21, (size, size, 3))
    return field, ((clean + field).astype(np.uint8), clean), np.full((6, 48, 48, 3), 128, np.uint8)


def _residual(clip, noisy_clip) -> np.ndarray:
    """noisy - clean of a sampled clip, (T, c, c, 3) integers (0-255 scale)."""
    return ((noisy_clip - clip) * 255).round().permute(0, 2, 3, 1).numpy().astype(int)


def test_transfer_adds_real_residuals_independent_per_frame() -> None:
    field, (noisy, clean), video = _flat_pair_and_video(40, seed=1)
    sampler = ClipSampler(
        [video], [], 4, 16, random.Random(0), [(noisy, clean)], pair_share=0.0, transfer_share=1.0
    )
    for _ in range(5):
        clip, noisy_clip = sampler.sample()
        assert noisy_clip is not None
        residual = _residual(clip, noisy_clip)
        assert all(_is_crop_of(frame, field) for frame in residual)
        assert len({frame.tobytes() for frame in residual}) == 4  # a new crop each frame
    plain = ClipSampler([video], [], 4, 16, random.Random(0), [(noisy, clean)], pair_share=0.0)
    assert plain.sample()[1] is None  # default: synthetic noise only


def test_codec_share_compresses_transferred_clips() -> None:
    """--codec-share also sends real-noise clips through a codec: the frames are no longer the
    pair's residual crops, and the codec (lossy, smoothing) takes part of the noise away."""
    field, (noisy, clean), video = _flat_pair_and_video(64, seed=2)
    sampler = ClipSampler(
        [video], [], 4, 32, random.Random(0), [(noisy, clean)], 0.0, 1.0, codec_share=1.0
    )
    for _ in range(3):
        residual = _residual(*sampler.sample())
        assert not any(_is_crop_of(frame, field) for frame in residual)
        assert residual.std() < 0.97 * field.std()
        assert abs(residual.mean()) < 2.0  # compression keeps the picture's level
