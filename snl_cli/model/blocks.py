"""Layers shared by the networks: normalisation, residual convs, resampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel.

    Shape:
        x: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # one fused op on the channels-last view (a copy when x is not channels-last)
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """conv3x3 -> LeakyReLU -> conv3x3, plus the input.

    Shape:
        x: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


def down(c_in: int, c_out: int) -> nn.Module:
    """Halve the resolution: a strided 2x2 conv."""
    return nn.Conv2d(c_in, c_out, 2, stride=2)


def up(c_in: int, c_out: int) -> nn.Module:
    """Double the resolution: a 2x2 transposed conv."""
    return nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
