"""snl: video denoising with Shifted Non-Local Search."""

__version__ = "0.1.0"
