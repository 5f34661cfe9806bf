"""Training pieces: noise model, loss, the step budget, a few steps lowering the loss."""

from __future__ import annotations

import torch

from snl_cli.model.stan import STAN, STANConfig
from snl_cli.synthetic import gaussian as add_noise
from snl_cli.train import (
    TrainOptions,
    budget_spent,
    charbonnier,
    psnr_loss,
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


def test_psnr_loss_descends_minus_the_mean_psnr_of_the_clips() -> None:
    """Its gradient points where the mean per-clip PSNR (float64, by hand) rises fastest, at
    Charbonnier's scale; one MSE over the batch would instead favour the noisiest clip."""
    torch.manual_seed(0)
    clean = torch.rand(3, 2, 3, 8, 8, dtype=torch.float64)
    error = torch.randn_like(clean) * torch.tensor([0.2, 0.05, 0.01]).view(3, 1, 1, 1, 1)

    def gradient(fn, error: torch.Tensor = error) -> torch.Tensor:
        out = (clean + error).requires_grad_()
        fn(out).backward()
        return out.grad.flatten()

    def minus_mean_psnr(out):
        mse = ((out - clean) ** 2).reshape(3, -1).mean(1)
        return -(10 * torch.log10(1 / (mse + 1e-5))).mean()

    ours = gradient(lambda out: psnr_loss(out, clean))
    reference = gradient(minus_mean_psnr)
    cosine = torch.dot(ours, reference) / (ours.norm() * reference.norm())
    assert cosine > 1 - 1e-9
    plain = gradient(lambda out: charbonnier(out, clean))
    assert torch.dot(plain, reference) / (plain.norm() * reference.norm()) < 0.5
    # the same size of step as Charbonnier when every clip has the same error
    alike = torch.randn_like(clean) * 0.05
    ours = gradient(lambda out: psnr_loss(out, clean), alike)
    plain = gradient(lambda out: charbonnier(out, clean), alike)
    assert 0.8 < ours.norm() / plain.norm() < 1.25


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


def test_photo_share_shows_synthetic_clips_as_photos() -> None:
    """--photo-share: a synthetic-noise clip becomes one noisy frame repeated (as `snl denoise`
    shows a photo), its clean target the same frame; without it, noise is new in every frame."""
    import random

    import numpy as np

    from snl_cli.sampler import ClipSampler
    from snl_cli.train import training_batch

    video = np.random.default_rng(0).integers(0, 256, (8, 40, 40, 3), dtype=np.uint8)
    sampler = ClipSampler([video], [], frames=4, crop=32, rng=random.Random(1))
    for share, photos in ((1.0, True), (0.0, False)):
        opts = TrainOptions(data=[], out="x", noise="gaussian", batch=3, photo_share=share)
        clean, noisy = training_batch(sampler, opts, random.Random(2))
        assert clean.shape == noisy.shape == (3, 4, 3, 32, 32)
        for c, n in zip(clean, noisy, strict=True):
            residual = n - c
            assert residual.abs().max() > 0  # noise was added
            assert torch.equal(c[0], c[-1]) == photos
            assert torch.equal(residual[0], residual[-1]) == photos
