# Two commands for a reader:   make lab    (set up, open JupyterLab)
#                              make test   (set up, run all tests and notebooks)
# Set-up happens once: the venv is only rebuilt when requirements.txt or pyproject.toml change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aelib-installed
# extra options for JupyterLab, e.g. make lab LAB_ARGS=--no-browser; root (containers) needs --allow-root
LAB_ARGS ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

.PHONY: setup lab test notebooks bench clean-cache

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt -e .
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/

test: setup
	TQDM_DISABLE=1 MPLBACKEND=Agg $(BIN)/python -m pytest

# Execute every notebook top to bottom in place: regenerates outputs and images/.
notebooks: setup
	cd notebooks && for nb in [0-9][0-9]_*.ipynb; do \
		echo "== $$nb"; \
		TQDM_DISABLE=1 ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=1800 "$$nb" || exit 1; \
	done

bench: setup
	$(BIN)/python bench/bench_train.py

clean-cache:
	rm -rf checkpoints
