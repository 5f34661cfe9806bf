"""The wheel must carry every subpackage, the CUDA sources and the weights."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_listed() -> None:
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "snl_cli").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found <= set(CONFIG["packages"]), sorted(found - set(CONFIG["packages"]))


def test_data_packages_map_to_the_top_level_folders() -> None:
    assert CONFIG["package-dir"] == {"snl_cli.kernels": "kernels", "snl_cli.weights": "weights"}
    for folder, package in (("kernels", "snl_cli.kernels"), ("weights", "snl_cli.weights")):
        patterns = CONFIG["package-data"][package]
        files = [p for p in (ROOT / folder).iterdir() if p.is_file() and p.suffix != ".py"]
        missing = [p.name for p in files if not any(fnmatch(p.name, pat) for pat in patterns)]
        assert not missing, f"{folder}/ files not shipped: {missing}"
