# Two commands, each doing its own set-up from a fresh clone:
#   make demo   — the example campaign end to end (validate → catalog → generate → QC → review → publish)
#   (setup also compiles the message catalogs: core/locale/*/LC_MESSAGES/messages.po → .mo)
#   make test   — the layering contracts (import-linter), then the test suite (SQLite and PostgreSQL;
#                 PostgreSQL at 127.0.0.1:5432 unless WANFLOW_TEST_PG)
# torch is installed first and pinned: a CPU build exists for 2.13.0; any other spec pulls gigabytes of CUDA.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0

.PHONY: setup demo test bench browser locales clean

setup: $(VENV)/.installed locales

# The message catalogs (core/locale/*/LC_MESSAGES/messages.po, committed) compiled to .mo (build outputs).
locales: $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -d core/locale -D messages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet $(TORCH) -e '.[test]'
	touch $@

demo: setup
	$(BIN)/wanflow demo
	$(BIN)/wanflow personalize demo   # a tiny brand LoRA trained on the stand-in, used in one item

test: setup browser
	$(BIN)/lint-imports   # the layers (docs/architecture.md): a wrong import fails before any test runs
	$(BIN)/python -m pytest

# The dashboard's browser test drives Debian's chromium through Playwright (which cannot download its own here);
# chromium draws the Japanese pages with Debian's IPAexGothic (the label and the reports need no system font:
# theirs ships in the japanize-matplotlib wheel, adapters/fonts.py).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)
	@fc-list :lang=ja | grep -q . || (apt-get update -qq && apt-get install -y -qq fonts-ipaexfont-gothic)

bench: setup
	$(BIN)/python bench/campaign.py --clips 20
	$(BIN)/python bench/review.py --tasks 10000
	$(BIN)/python bench/publish.py

clean:
	rm -rf .wanflow
