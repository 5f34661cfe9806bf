"""STANStream (one frame at a time) against STAN.forward over the whole clip."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from snl_cli.flow import estimate_flows
from snl_cli.model.stan import STAN, STANConfig
from snl_cli.model.stream import STANStream

SMALL = STANConfig(channels=(8, 16, 16), heads=2, qk_dim=4, attn_blocks=2, ws=3, topk=4, k_agg=3,
                   input_frames=5, level_input=True)  # fmt: skip
H, W = 37, 42  # not multiples of the attention's scale: the padding is part of the check


def _model(cfg: STANConfig, seed: int = 0) -> STAN:
    torch.manual_seed(seed)
    model = STAN(cfg).eval()
    with torch.no_grad():  # the output layer starts at zero (identity): give it weights
        model.out.weight.normal_(0, 0.1)
    return model


def _clip(T: int, seed: int = 0) -> torch.Tensor:
    """A textured frame drifting 1-2 px per frame, plus noise: flows and matches matter."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(3, H + 2 * T, W + 2 * T, generator=gen)
    base = torch.nn.functional.avg_pool2d(base.unsqueeze(0), 3, 1, 1)[0]
    frames = [base[:, t : t + H, 2 * t : 2 * t + W] for t in range(T)]
    clip = torch.stack(frames) + 0.05 * torch.randn(T, 3, H, W, generator=gen)
    return clip.clamp(0, 1)


def _streamed(model: STAN, clip: torch.Tensor, **kwargs) -> tuple[torch.Tensor, list[int]]:
    """The stream's outputs and, after each push, how many frames it held (inputs)."""
    stream = STANStream(model, **kwargs)
    outs, held = [], []
    for frame in clip:
        outs += stream.push(frame)
        held.append(len(stream.inputs) + len(stream.skips))
    outs += stream.close()
    return torch.stack(outs), held


def _whole(model: STAN, clip: torch.Tensor, level: float, flows: bool, backend: str):
    with torch.no_grad():
        motion = None
        if flows:
            motion = tuple(f.unsqueeze(0) for f in estimate_flows(clip, downscale=model.cfg.scale))
        out = model(clip.unsqueeze(0), motion, backend=backend, level=torch.tensor([level]))
    return out[0].clamp(0, 1)


CONFIGS = {
    "shipped_shape": SMALL,
    "wt2": dataclasses.replace(SMALL, wt=2, input_frames=3),
    "deeper": dataclasses.replace(SMALL, depth=(2, 1, 3)),
    "one_block_single_input": dataclasses.replace(SMALL, attn_blocks=1, input_frames=1),
    "no_attention": dataclasses.replace(SMALL, attn_blocks=0, level_input=False),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("T", [1, 2, 3, 6, 11])
def test_stream_equals_whole_clip(name: str, T: int) -> None:
    """Bit for bit against the same kernels on the whole clip, and to float rounding against
    the torch reference path (search, gathers and softmax in torch). A photo (T = 1) only to
    float rounding: the whole-clip path runs its repeated frame's copies as one batch."""
    model, clip = _model(CONFIGS[name], seed=T), _clip(T, seed=T)
    got, _ = _streamed(model, clip, level=17.0)
    assert got.shape == clip.shape
    same_kernels = _whole(model, clip, 17.0, True, "cpu")
    if T > 1 or not model.attn:
        assert torch.equal(got, same_kernels)
    torch.testing.assert_close(got, same_kernels, atol=1e-6, rtol=0)
    torch.testing.assert_close(got, _whole(model, clip, 17.0, True, "torch"), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["shipped_shape", "wt2", "one_block_single_input"])
def test_a_photo_is_searched_as_its_frame_repeated_over_the_window(name: str) -> None:
    """A one-frame clip comes out as the centre frame of that frame repeated 2·wt+1 times
    (the way training shows photos), on the whole-clip path and in the stream; searched
    alone, the same photo comes out otherwise (so the check can tell the two apart)."""
    cfg = CONFIGS[name]
    model, photo = _model(cfg, seed=4), _clip(1, seed=4)
    repeated = photo.expand(2 * cfg.wt + 1, -1, -1, -1).contiguous()
    want = _whole(model, repeated, 12.0, False, "torch")[cfg.wt]
    whole = _whole(model, photo, 12.0, False, "torch")[0]
    streamed, _ = _streamed(model, photo, level=12.0)
    torch.testing.assert_close(whole, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(streamed[0], want, atol=1e-4, rtol=0)
    alone = dataclasses.replace(cfg, wt=0)  # the same weights searching the frame alone
    lone = STAN(alone).eval()
    lone.load_state_dict(model.state_dict())
    assert (_whole(lone, photo, 12.0, False, "torch")[0] - want).abs().max() > 1e-4


def test_stream_without_flows_and_in_bf16() -> None:
    model, clip = _model(SMALL, seed=3), _clip(7, seed=3)
    got, _ = _streamed(model, clip, level=30.0, flows=False)
    assert torch.equal(got, _whole(model, clip, 30.0, False, "cpu"))
    got, _ = _streamed(model, clip, level=30.0, bf16=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = _whole(model, clip, 30.0, True, "cpu")
    assert torch.equal(got, want.float())


def test_level_steers_the_stream() -> None:
    model, clip = _model(SMALL, seed=4), _clip(4, seed=4)
    with torch.no_grad():  # make the level plane matter
        model.inp.weight[:, -1].normal_(0, 1.0)
    low, _ = _streamed(model, clip, level=5.0)
    high, _ = _streamed(model, clip, level=50.0)
    assert (low - high).abs().max() > 1e-3


def test_stream_holds_a_bounded_number_of_frames() -> None:
    """What the stream holds does not grow with the clip: ~7 frames for this model."""
    model = _model(SMALL)
    _, short = _streamed(model, _clip(12))
    _, long = _streamed(model, _clip(40))
    assert max(long) == max(short) <= 12
    stream = STANStream(model)
    for frame in _clip(40):
        stream.push(frame)
        features = sum(len(block.x) + len(block.qk) for block in stream.blocks)
        assert features <= 20 and len(stream.fflow) <= 8


def test_outputs_come_as_soon_as_determined() -> None:
    """Frame t is out once frame t + context is in (t + 2·context at the clip's start)."""
    model = _model(SMALL)
    stream = STANStream(model)
    counts = [len(stream.push(frame)) for frame in _clip(10)]
    context = SMALL.context  # 4
    assert sum(counts[: context + 1]) == 0
    assert counts[context + 2 :] == [1] * (10 - context - 2)
    assert len(stream.close()) == 10 - sum(counts)


def test_bad_pushes() -> None:
    stream = STANStream(_model(SMALL))
    stream.push(torch.rand(3, 20, 24))
    with pytest.raises(ValueError, match="size"):
        stream.push(torch.rand(3, 20, 25))
    stream.close()
    with pytest.raises(RuntimeError, match="close"):
        stream.push(torch.rand(3, 20, 24))


@pytest.mark.parametrize("name", ["shipped_shape", "wt2", "no_attention"])
@pytest.mark.parametrize("focus", [0, 3, 6, 8])
def test_focus_computes_that_frame_alone(name: str, focus: int) -> None:
    """With a focus only what that frame's output depends on is computed (`snl preview`):
    the frame as in a full run, the others None, fewer frames encoded inside the clip."""
    model, clip = _model(CONFIGS[name], seed=focus), _clip(9, seed=focus)
    full, _ = _streamed(model, clip, level=12.0)
    stream = STANStream(model, level=12.0, focus=(focus, 9))
    encoded = []
    original = model._encode

    def counting(x, rows, levels):
        encoded.append(1)
        return original(x, rows, levels)

    model._encode = counting
    outs = [out for frame in clip for out in stream.push(frame)] + stream.close()
    assert [i for i, out in enumerate(outs) if out is not None] == [focus]
    assert torch.equal(outs[focus], full[focus])
    if CONFIGS[name].attn_blocks and focus == 3:
        assert len(encoded) < 9  # inside the clip the windows need fewer frames


def test_focus_checks_the_clip_length() -> None:
    stream = STANStream(_model(SMALL), focus=(1, 4))
    for frame in _clip(3):
        stream.push(frame)
    with pytest.raises(ValueError, match="3 frames, not the 4"):
        stream.close()
