"""Defaults shared by the command line and the library, in a module light enough for
`snl --help` to import (no torch)."""

# Frames denoised together. Each window also holds the model's context on both sides (4 for
# the shipped STAN), computed and thrown away, so longer chunks waste less: 40 frames computed
# per 32 kept, against 24 per 16. Memory grows with the window: STAN's working set is ~400
# bytes per pixel and frame (measured 348-403 at 480x272 and 480x544, 8 and 16 frames), so a
# whole 960x540 window of 40 frames would take ~8 GB; frames are tiled to fit MEMORY_BUDGET.
DEFAULT_CHUNK = 32
# Memory for the denoiser's working set on the CPU, besides the frames a window holds (~40
# bytes per pixel and frame) and the process (~0.4 GB); also at most half of the memory
# available when a run starts, less those. Tiles are sized from it
# (`snl_cli.memory.auto_tile`): smaller tiles compute more pixels twice (halos, overlaps).
WORK_BUDGET = 3 << 30
