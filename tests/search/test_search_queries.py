"""`shifted_nls(queries=(first, stop))`: the search of a run of query frames alone, each in
its window of the whole clip, against the float64 brute force of every frame."""

from __future__ import annotations

import bruteforce
import pytest
import torch
from search_cases import Backend, Case, as_numpy

from snl_cli.search import shifted_nls

# whole-pixel offsets take the CPU backend's own subset path ("int"); fractional ones and
# none take the generic one (search every frame, keep the run)
QUERY_CASES = [
    Case("int_offsets", T=6, C=4, H=7, W=8, seed=31, params=dict(ps=1, heads=2, wt=1, topk=5)),
    Case("int_wt2", T=7, H=6, W=6, seed=32, params=dict(ps=1, wt=2, ws=5, topk=7)),
    Case("int_patches_open", T=5, H=7, W=6, seed=33, params=dict(ps=3, full_ws=False, topk=6)),
    Case("fractional", T=5, H=6, W=6, offsets=True, seed=34),
    Case("no_offsets", T=4, H=6, W=5, seed=35),
]  # fmt: skip
RUNS = [(0, 1), (2, 3), (1, 4), (-1, None)]  # (-1, None): the last frame


def _inputs(c: Case):
    q, k, offsets = c.inputs()
    if c.name.startswith("int"):
        kw = c.kwargs()
        Wn = min(2 * kw["wt"] + 1, c.T) - 1
        gen = torch.Generator().manual_seed(c.seed + 100)
        offsets = torch.randint(-3, 4, (c.B, c.T, Wn, 2, c.H, c.W), generator=gen).double()
    return q, k, offsets


@pytest.mark.parametrize("c", QUERY_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("run", RUNS)
def test_query_frames_match_brute_force(backend: Backend, c: Case, run) -> None:
    q, k, offsets = _inputs(c)
    first, stop = (c.T - 1, c.T) if run[0] < 0 else run
    kw = c.kwargs()
    some = None if offsets is None else offsets[:, first:stop]
    dists, inds = shifted_nls(
        backend.put(q), backend.put(k), backend.put(some), queries=(first, stop),
        backend=backend.name, **kw,
    )  # fmt: skip
    assert dists.shape[2] == inds.shape[2] == stop - first
    brute = {key: v for key, v in kw.items() if key != "topk"}
    all_dists, all_pos = bruteforce.search_candidates(
        as_numpy(q), as_numpy(k), as_numpy(offsets), **brute
    )
    bruteforce.check_search(
        as_numpy(dists), as_numpy(inds), all_dists[:, :, first:stop], all_pos[:, :, first:stop],
        largest=False, rtol=1e-9, atol=1e-9,
    )  # fmt: skip


def test_query_arguments_are_checked() -> None:
    q = torch.rand(1, 4, 2, 6, 6)
    with pytest.raises(ValueError, match="queries"):
        shifted_nls(q, q, queries=(2, 2), ws=3, topk=3)
    with pytest.raises(ValueError, match="queries"):
        shifted_nls(q, q, queries=(0, 5), ws=3, topk=3)
    with pytest.raises(ValueError, match="offsets"):
        shifted_nls(q, q, torch.zeros(1, 4, 2, 2, 6, 6), queries=(1, 2), ws=3, topk=3)
