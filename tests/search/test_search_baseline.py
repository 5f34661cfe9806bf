"""The unfold baseline of `snl bench search` computes the same search (so ratios compare
like with like), and the headline ratios of the issue hold (slow: `make bench`)."""

from __future__ import annotations

import pytest
import torch
from search_cases import case

from snl_cli.bench.search import HEADLINE, measure_isolated
from snl_cli.bench.search_baseline import unfold_search
from snl_cli.search import shifted_nls
from snl_cli.search.api import make_spec


@pytest.mark.parametrize(
    "name", ["base", "prod", "open_borders", "stride0", "offsets", "offsets_heads_prod", "wt2"]
)
def test_unfold_equals_reference(name: str) -> None:
    c = case(name)
    q, k, offsets = c.inputs()
    dists, inds = unfold_search(q, k, offsets, make_spec(q, k, offsets, **c.kwargs()))
    want_dists, want_inds = shifted_nls(q, k, offsets, backend="torch", **c.kwargs())
    torch.testing.assert_close(dists, want_dists, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(inds, want_inds)


@pytest.mark.slow
def test_headline_ratios() -> None:
    """B=1, T=5, C=8, 96x96, ws=9, wt=1, ps=5, topk=10, l2: cpu >= 3x faster, >= 10x less
    peak memory than the unfold baseline, measured side by side."""
    cpu = measure_isolated("cpu", HEADLINE, "cpu", repeat=3)
    unfold = measure_isolated("unfold", HEADLINE, "cpu", repeat=1)
    assert unfold["time_s"] / cpu["time_s"] >= 3, (cpu, unfold)
    assert unfold["peak_mb"] / max(cpu["peak_mb"], 4096 / 2**20) >= 10, (cpu, unfold)
