# Two commands for a reader:   make lab    (set up, open JupyterLab)
#                              make test   (set up, run all tests and notebooks)
# Set-up happens once: the venv is only rebuilt when requirements.txt or pyproject.toml change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aelib-installed
JOBS   ?= 2
# other parameters for `make params-check`, and where its executed copies go
PARAMS ?= LATENT_DIM=16 SEED=1 EPOCHS=3
PARAMS_OUT ?= /tmp/aelib-params-check
# extra options for JupyterLab, e.g. make lab LAB_ARGS=--no-browser; root (containers) needs --allow-root
LAB_ARGS ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
RUN := TQDM_DISABLE=1 MPLBACKEND=Agg

.PHONY: setup lab test unit pretrain notebooks params-check bench clean-cache

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt -e .
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/

# Train the models the notebooks share, $(JOBS) at a time (the notebooks would train them too).
pretrain: setup
	$(RUN) $(BIN)/python scripts/pretrain.py --jobs $(JOBS)

# Unit tests and every notebook (nbval), $(JOBS) pytest workers, one notebook per worker.
test: pretrain
	$(RUN) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope

unit: setup
	$(RUN) $(BIN)/python -m pytest tests

# Every notebook once more with other parameters, in a scratch copy; fails on any error.
params-check: setup
	$(RUN) $(BIN)/python scripts/pretrain.py --jobs $(JOBS) $(shell echo "$(PARAMS)" | sed -E 's/LATENT_DIM=/--latent-dim /; s/SEED=/--seed /; s/EPOCHS=/--epochs /')
	$(RUN) $(BIN)/python scripts/run_params.py --jobs $(JOBS) --out $(PARAMS_OUT) --set $(PARAMS) -- notebooks/[0-9][0-9]_*.ipynb

# Execute every notebook top to bottom in place: regenerates outputs and images/.
notebooks: pretrain
	cd notebooks && for nb in [0-9][0-9]_*.ipynb; do \
		echo "== $$nb"; \
		env -u MPLBACKEND TQDM_DISABLE=1 ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=1800 "$$nb" || exit 1; \
	done

bench: setup
	$(BIN)/python bench/bench_train.py

clean-cache:
	rm -rf checkpoints
