"""The fused CPU attention kernel against the unfused torch path it replaces at inference."""

from __future__ import annotations

import pytest
import torch

from snl_cli.model.stan import STAN, ShiftedNLSAttention, STANConfig

CFG = STANConfig(channels=(8, 16, 16), heads=2, qk_dim=4, attn_blocks=2, ws=3, topk=6, k_agg=4)


def _block_inputs(B: int = 2, T: int = 3, h: int = 7, w: int = 9, K: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    block = ShiftedNLSAttention(CFG, 16)
    with torch.no_grad():
        block.mix.normal_(generator=gen)
        block.log_scale.normal_(generator=gen)
    heads, qk = CFG.heads, CFG.qk_dim
    qk_map = torch.randn(B * T, 2 * heads * qk, h, w, generator=gen)
    v = torch.randn(B * T, 16, h, w, generator=gen)
    frame = torch.randint(0, T, (B, heads, T, h, w, K, 1), generator=gen)
    y = torch.randint(0, h, (B, heads, T, h, w, K, 1), generator=gen)
    x = torch.randint(0, w, (B, heads, T, h, w, K, 1), generator=gen)
    inds = torch.cat([frame, y, x], -1).float()
    return block, qk_map, v, inds


def _unfused(block, qk_map, v, inds, dists, B):
    BT, _, h, w = v.shape
    T = BT // B
    q, k = qk_map.reshape(B, T, 2, -1, h, w).unbind(2)
    out = block._aggregate(q, k, v.reshape(B, T, -1, h, w), inds, dists, "torch")
    return out.transpose(1, 2).reshape(BT, -1, h, w)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fused_matches_unfused_recomputing_distances(layout) -> None:
    block, qk_map, v, inds = _block_inputs()
    with torch.no_grad():
        want = _unfused(block, qk_map, v, inds, None, B=2)
        got = block._aggregate_fused(
            qk_map.contiguous(memory_format=layout),
            v.contiguous(memory_format=layout),
            inds,
            None,
        )
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fused_matches_unfused_with_given_distances() -> None:
    block, qk_map, v, inds = _block_inputs(seed=1)
    dists = torch.rand(*inds.shape[:-1], generator=torch.Generator().manual_seed(9)) * 4
    with torch.no_grad():
        want = _unfused(block, qk_map, v, inds, dists, B=2)
        got = block._aggregate_fused(qk_map, v, inds, dists)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fused_against_float64_loops() -> None:
    """A brute-force float64 evaluation of one query: rank, softmax, mix."""
    block, qk_map, v, inds = _block_inputs(B=1, T=2, h=5, w=6, seed=2)
    with torch.no_grad():
        got = block._aggregate_fused(qk_map, v, inds, None)
    heads, qk, ch, k_agg = CFG.heads, CFG.qk_dim, 8, CFG.k_agg
    q64, v64 = qk_map.double(), v.double()
    mix = block.mix.detach().double()
    for t, y, x in [(0, 0, 0), (1, 4, 5), (1, 2, 3)]:
        for hd in range(heads):
            cands = []
            for j in range(inds.shape[5]):
                f, yy, xx = (int(c) for c in inds[0, hd, t, y, x, j])
                qv = q64[t, hd * qk : (hd + 1) * qk, y, x]
                kv = q64[f, heads * qk + hd * qk : heads * qk + (hd + 1) * qk, yy, xx]
                cands.append((float(((qv - kv) ** 2).sum()), j, f, yy, xx))
            cands.sort()
            top = cands[:k_agg]
            scale = float(block.log_scale[hd].detach().exp())
            e = torch.tensor([-scale * d for d, *_ in top], dtype=torch.float64).softmax(0)
            want = torch.zeros(ch, dtype=torch.float64)
            for r, (_, _, f, yy, xx) in enumerate(top):
                want += mix[hd, :, r] @ (e[r] * v64[f, hd * ch : (hd + 1) * ch, yy, xx])
            torch.testing.assert_close(
                got[t, hd * ch : (hd + 1) * ch, y, x].double(), want, rtol=1e-5, atol=1e-5
            )


def test_model_inference_with_fused_kernel_equals_training_path() -> None:
    torch.manual_seed(4)
    model = STAN(CFG)
    torch.nn.init.normal_(model.out.weight, std=0.1)
    x = torch.rand(1, 4, 3, 24, 28)
    flows = (torch.randn(1, 4, 2, 24, 28) * 3, torch.randn(1, 4, 2, 24, 28) * 3)
    whole = model(x, flows, backend="cpu")  # grad enabled: unfused gathers
    with torch.no_grad():
        fused = model(x, flows, backend="cpu")
    torch.testing.assert_close(fused, whole.detach(), rtol=1e-5, atol=1e-5)
