"""Defaults shared by the command line and the library, in a module light enough for
`snl --help` to import (no torch)."""

# Frames denoised together. Each window also holds the model's context on both sides (2 for
# STAN), computed and thrown away, so longer chunks waste less: 36 frames computed per 32 kept,
# against 20 per 16. A 480p window of 36 frames takes ~5 GB with STAN (measured ~350 bytes per
# pixel and frame); larger frames are tiled to fit the memory available.
DEFAULT_CHUNK = 32
