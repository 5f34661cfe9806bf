"""The heap settings reach the libraries that allocate: checked in fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# torch puts a block on huge pages by aligning it to the page (c10's alloc_cpu: posix_memalign
# to the page size, then madvise(MADV_HUGEPAGE)), and otherwise to 64 bytes; glibc's large
# blocks are mmaps plus a header, so without the hint they never start on a page
_ALIGNMENT = """
import snl_cli.cli  # the command line's entry: sets the hint before torch loads
import os, torch
block = torch.empty(64 << 20, dtype=torch.uint8)
print(os.environ.get("THP_MEM_ALLOC_ENABLE"), block.data_ptr() % os.sysconf("SC_PAGESIZE"))
"""


def _run(env_value: str | None) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    done = subprocess.run(
        [sys.executable, "-c", _ALIGNMENT], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    value, offset = done.stdout.split()
    return value, int(offset)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="huge pages: Linux only")
def test_cli_puts_torch_blocks_on_huge_pages_unless_told_not_to() -> None:
    assert _run(None) == ("1", 0)
    value, offset = _run("0")  # the user's choice stands
    assert value == "0" and offset != 0
