"""Shared layers against their textbook formulas in float64."""

from __future__ import annotations

import pytest
import torch

from snl_cli.model.blocks import LayerNorm2d


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_layer_norm_normalises_each_pixel_over_channels(layout) -> None:
    torch.manual_seed(0)
    norm = LayerNorm2d(8).double()
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = (torch.randn(2, 8, 5, 6, dtype=torch.float64) * 3 + 1).contiguous(memory_format=layout)
    mean = x.mean(1, keepdim=True)
    var = ((x - mean) ** 2).mean(1, keepdim=True)
    want = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight.view(1, -1, 1, 1)
    want = want + norm.bias.view(1, -1, 1, 1)
    got = norm(x)
    assert got.shape == x.shape
    torch.testing.assert_close(got, want.detach(), rtol=1e-12, atol=1e-12)
