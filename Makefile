# Every target works from a fresh clone. `make install` first; the others use .venv when it exists.
VENV ?= .venv
PY ?= $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,python3)
DATA ?= ../shared/data

.PHONY: install test lint format bench bench-laptop demo clean

install:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install torch==2.13.0
	$(VENV)/bin/pip install -e '.[dev]'

test:
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check snl_cli tests
	$(PY) -m ruff format --check snl_cli tests

format:
	$(PY) -m ruff format snl_cli tests
	$(PY) -m ruff check --fix snl_cli tests

bench:
	$(PY) -m pytest -q -m slow
	$(PY) -m snl_cli bench search
	@if [ -d $(DATA)/davis2016-val-480p ]; then \
	  $(PY) -m snl_cli bench denoise $(DATA)/davis2016-val-480p/dog $(DATA)/davis2016-val-480p/goat \
	    $(DATA)/davis2016-val-480p/kite-surf --sigma 20 30 40 --frames 20 --plot bench-denoise.png \
	    --methods stan stan:bench/weights/unet5-calibration.safetensors \
	    stan:bench/weights/unet5-baseline.safetensors nlm bm3d nlmeans fftdnoiz dctdnoiz; \
	else echo "no $(DATA): skipping bench denoise on DAVIS"; fi
	$(MAKE) bench-laptop

# Speed ratio (stan fps / bm3d fps) and peak memory at 540p and 1080p on generated clips,
# longer than one chunk window (32 + 2x4 frames) so that the memory is a long clip's.
LAPTOP_FRAMES ?= 44
bench-laptop:
	$(PY) -c "from pathlib import Path; from snl_cli.bench.denoise import pattern_clip as p; \
	  [p(Path(f'build/bench/pattern-{h}p.mkv'), w, h, $(LAPTOP_FRAMES)) for w, h in ((960, 540), (1920, 1080))]"
	$(PY) -m snl_cli bench denoise build/bench/pattern-540p.mkv build/bench/pattern-1080p.mkv \
	  --sigma 20 --frames $(LAPTOP_FRAMES) --methods stan bm3d

demo: $(VENV)/bin/snl
	$(VENV)/bin/snl demo demo/dog.mp4 --out demo-out --overwrite

$(VENV)/bin/snl:
	$(MAKE) install

clean:
	rm -rf build dist *.egg-info .pytest_cache
