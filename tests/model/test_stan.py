"""STAN: shapes, determinism, the inference time-slicing, flows changing the matches."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from snl_cli.model.stan import STAN, STANConfig, attention_path, estimate_level, match_dists

SMALL = STANConfig(channels=(8, 16, 16), heads=2, qk_dim=4, attn_blocks=2, ws=3, topk=4, k_agg=3)


def test_forward_shape_and_odd_size() -> None:
    torch.manual_seed(0)
    model = STAN(SMALL)
    x = torch.rand(2, 4, 3, 21, 30)
    y = model(x, backend="torch")
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_deterministic_in_eval() -> None:
    torch.manual_seed(0)
    model = STAN(SMALL).eval()
    x = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        a, b = model(x, backend="torch"), model(x, backend="torch")
    assert torch.equal(a, b)


def test_inference_slices_equal_training_path() -> None:
    """Eval processes attention one frame at a time; the result must equal the whole-clip path."""
    torch.manual_seed(1)
    model = STAN(SMALL)
    x = torch.rand(1, 5, 3, 16, 20)
    flows = (torch.randn(1, 5, 2, 16, 20), torch.randn(1, 5, 2, 16, 20))
    whole = model(x, flows, backend="torch")
    with torch.no_grad():
        sliced = model(x, flows, backend="torch")
    torch.testing.assert_close(sliced, whole.detach(), rtol=1e-5, atol=1e-5)


def test_flows_change_the_output() -> None:
    torch.manual_seed(2)
    model = STAN(SMALL).eval()
    torch.nn.init.normal_(model.out.weight, std=0.1)  # untrained STAN is the identity
    x = torch.rand(1, 3, 3, 16, 16)
    flows = (torch.full((1, 3, 2, 16, 16), 4.0), torch.full((1, 3, 2, 16, 16), -4.0))
    with torch.no_grad():
        plain, shifted = model(x, backend="torch"), model(x, flows, backend="torch")
    assert (plain - shifted).abs().max() > 1e-4


def test_match_dists_against_loops() -> None:
    torch.manual_seed(3)
    q = torch.randn(1, 2, 4, 3, 3, dtype=torch.float64)
    k = torch.randn(1, 2, 4, 3, 3, dtype=torch.float64)
    inds = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64).expand(1, 2, 2, 3, 3, 1, 3)
    d = match_dists(q, k, inds.contiguous(), heads=2, backend="torch")
    for h in range(2):
        for t in range(2):
            ch = slice(2 * h, 2 * h + 2)
            want = ((q[0, t, ch, 1, 1] - k[0, 1, ch, 2, 0]) ** 2).sum()
            assert d[0, h, t, 1, 1, 0].item() == pytest.approx(want.item())


def test_config_round_trip_and_unknown_keys() -> None:
    cfg = STANConfig.from_dict(SMALL.to_dict())
    assert cfg == SMALL
    with pytest.raises(ValueError, match="unknown"):
        STANConfig.from_dict({"width": 3})


def test_plain_unet_with_input_stack_sees_neighbours_only_within_reach() -> None:
    """attn_blocks=0, input_frames=3: frame t's output depends on frames t-1..t+1 only."""
    torch.manual_seed(0)
    cfg = STANConfig(channels=(8, 16), attn_blocks=0, input_frames=3)
    assert cfg.context == 1
    model = STAN(cfg).eval()
    torch.nn.init.normal_(model.out.weight, std=0.1)  # leave the identity start
    clip = torch.rand(1, 5, 3, 16, 16)
    base = model(clip)
    for changed, affected in ((0, {0, 1}), (2, {1, 2, 3}), (4, {3, 4})):
        other = clip.clone()
        other[0, changed] = torch.rand(3, 16, 16)
        diff = (model(other) - base).abs().flatten(2).amax(-1)[0]
        assert {t for t in range(5) if diff[t] > 0} == affected


def test_context_counts_the_input_stack_and_attention() -> None:
    assert STANConfig().context == 2  # two blocks of wt=1
    assert STANConfig(input_frames=5, attn_blocks=1).context == 3
    with pytest.raises(ValueError, match="input_frames"):
        STAN(STANConfig(input_frames=4))


def test_widen_input_computes_the_same_then_sees_neighbours() -> None:
    torch.manual_seed(5)
    model = STAN(SMALL).eval()
    torch.nn.init.normal_(model.out.weight, std=0.1)
    wide = model.widen_input(3).eval()
    assert wide.cfg.input_frames == 3 and wide.cfg.context == SMALL.context + 1
    x = torch.rand(1, 4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(wide(x, backend="torch"), model(x, backend="torch"))
        torch.nn.init.normal_(wide.inp.weight, std=0.1)  # once trained, neighbours count
        y = x.clone()
        y[0, 1] = torch.rand(3, 16, 16)
        changed = (wide(x, backend="torch") - wide(y, backend="torch")).abs().amax((2, 3, 4))
    assert changed[0, 0] > 1e-4  # frame 0 sees frame 1 through the input stack
    with pytest.raises(ValueError, match="odd"):
        model.widen_input(2)


def test_level_input_computes_the_same_then_reads_the_level() -> None:
    torch.manual_seed(6)
    model = STAN(SMALL).eval()
    torch.nn.init.normal_(model.out.weight, std=0.1)
    told = model.with_level_input().eval()
    assert told.cfg.level_input and told.inp.in_channels == model.inp.in_channels + 1
    x = torch.rand(2, 3, 3, 16, 16)
    with torch.no_grad():
        plain = model(x, backend="torch")
        for level in (None, torch.tensor([5.0, 40.0])):  # the plane's weights start at zero
            torch.testing.assert_close(told(x, backend="torch", level=level), plain)
        torch.nn.init.normal_(told.inp.weight, std=0.1)  # once trained, the level counts
        low = told(x, backend="torch", level=torch.tensor([5.0, 5.0]))
        high = told(x, backend="torch", level=torch.tensor([5.0, 40.0]))
        # per clip: the second clip's level changed, the first clip's output did not
        torch.testing.assert_close(low[0], high[0])
        assert (low[1] - high[1]).abs().max() > 1e-4
        # no level given: the model reads the one snl denoise --sigma auto would estimate
        estimated = estimate_level(x)
        given = told(x, backend="torch", level=estimated)
        torch.testing.assert_close(told(x, backend="torch"), given)
        # widening the input stack keeps the level plane's weights (and the function)
        wide = told.eval().widen_input(3).eval()
        torch.testing.assert_close(wide(x, backend="torch", level=estimated), given)


def test_deepen_computes_the_same_then_the_new_blocks_count() -> None:
    torch.manual_seed(7)
    model = STAN(SMALL).eval()
    torch.nn.init.normal_(model.out.weight, std=0.1)
    deep = model.deepen((1, 2, 3)).eval()
    counts = [len(deep.enc_more[0]), len(deep.enc_more[1]), len(deep.mid_more)]
    assert counts == [0, 1, 2] and [len(m) for m in deep.dec_more] == [0, 1]
    assert deep.cfg.depth == (1, 2, 3)
    x = torch.rand(1, 4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(deep(x, backend="torch"), model(x, backend="torch"))
        for block in deep.mid_more:  # once trained, the new blocks change the output
            torch.nn.init.normal_(block.conv2.weight, std=0.1)
        assert (deep(x, backend="torch") - model(x, backend="torch")).abs().max() > 1e-4
    # the architecture round-trips through the manifest's dict; one block each stays unwritten
    assert STANConfig.from_dict(deep.cfg.to_dict()) == deep.cfg
    assert "depth" not in SMALL.to_dict()
    with pytest.raises(ValueError, match="depth"):
        deep.deepen((1, 1, 3))  # fewer blocks than it has
    with pytest.raises(ValueError, match="depth"):
        STAN(STANConfig(channels=(8, 16), depth=(1, 2, 3)))


def test_estimate_level_reads_gaussian_noise_on_a_flat_clip() -> None:
    gen = torch.Generator().manual_seed(0)
    flat = torch.full((1, 4, 3, 64, 64), 0.5)
    for sigma in (5.0, 25.0):
        noisy = flat + torch.randn(flat.shape, generator=gen) * sigma / 255
        assert abs(estimate_level(noisy).item() - sigma) < 0.1 * sigma


def test_attention_path_follows_autograd_device_and_backend() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert attention_path(cpu, "auto") == "train"  # grad enabled
    with torch.no_grad():
        assert attention_path(cpu, "auto") == attention_path(cpu, "cpu") == "fused"
        assert attention_path(cpu, "torch") == attention_path(cpu, "emulate") == "frames"
        assert attention_path(cuda, "auto") == attention_path(cuda, "cpu") == "frames"


def test_with_search_keeps_the_weights_and_reaches_the_new_frames() -> None:
    """The same weights searching t-2..t+2: frame 0 then reaches outputs 0..4 through the two
    attention blocks (each window slides at the clip's ends), where t-1..t+1 reached 0..2.
    Every candidate is kept (topk), so whether a frame counts does not hang on a ranking."""
    torch.manual_seed(8)
    cfg = dataclasses.replace(SMALL, topk=1000)
    model = STAN(cfg).eval()
    torch.nn.init.normal_(model.out.weight, std=0.1)
    wide = model.with_search(ws=5, wt=2).eval()
    assert (wide.cfg.ws, wide.cfg.wt, wide.cfg.context) == (5, 2, 4)
    assert dataclasses.replace(wide.cfg, ws=3, wt=1) == model.cfg == cfg
    for name, tensor in model.state_dict().items():
        assert torch.equal(wide.state_dict()[name], tensor), name
    assert model.with_search() is model and model.with_search(ws=3, wt=1) is model
    clip = torch.rand(1, 9, 3, 16, 16)
    other = clip.clone()
    other[0, 0] = torch.rand(3, 16, 16)
    for net, affected in ((model, {0, 1, 2}), (wide, {0, 1, 2, 3, 4})):
        with torch.no_grad():
            diff = (net(other, backend="torch") - net(clip, backend="torch")).abs()
        reached = diff.flatten(2).amax(-1)[0]
        assert {t for t in range(9) if reached[t] > 0} == affected
    for bad in ({"ws": 4}, {"ws": 0}, {"wt": -1}):
        with pytest.raises(ValueError, match="expected"):
            model.with_search(**bad)
