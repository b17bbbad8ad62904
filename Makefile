# Two commands for a reader:   make lab    (set up, open JupyterLab)
#                              make test   (set up, run all tests and notebooks)
# Set-up happens once: the venv is only rebuilt when requirements.txt or pyproject.toml change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aelib-installed
JOBS   ?= 2
# parameter sets for `make params-check` (";" between sets): each PARAMS set runs every notebook, each
# PARAMS_MAIN set the main track 01-06 only. Together: an odd small code and a large one, 2 epochs, fewer
# samples; the optional notebooks (which score thousands of images) once, to keep CI within its time.
PARAMS ?= LATENT_DIM=3 SEED=5 EPOCHS=2 K_VALUES=[2,3,8] SWEEP_DIMS=[2,8] N_SEEDS=2 N_SAMPLES=500 N_FIT=5000
PARAMS_MAIN ?= LATENT_DIM=16 SEED=1 EPOCHS=2 K_VALUES=[4,16] N_SAMPLES=500
PARAMS_OUT ?= /tmp/aelib-params-check
# extra options for JupyterLab, e.g. make lab LAB_ARGS=--no-browser; root (containers) needs --allow-root
LAB_ARGS ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
RUN := TQDM_DISABLE=1 MPLBACKEND=Agg
# tests and checks: one torch thread per process (each pytest worker, notebook kernel, training)
ONE_THREAD := AELIB_NUM_THREADS=1
# notebooks run after `pretrain` read the cache only: a model missing from scripts/pretrain.py's
# list is an error there instead of a silent training
CACHE_ONLY := AELIB_CACHE_ONLY=1

.PHONY: setup lab lab-check test unit pretrain notebooks params-check cold-main bench clean-cache

# A venv without a working pip (e.g. left by `python3 -m venv` on Debian/Ubuntu without the
# venv package) is removed and made again; if that fails too, make says what to install.
$(STAMP): requirements.txt pyproject.toml
	@if ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
		if [ -e $(VENV) ] && [ ! -f $(VENV)/pyvenv.cfg ]; then \
			echo "make: $(VENV) exists but is not a virtual environment; move it away or pass VENV=..." >&2; exit 1; fi; \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { \
			echo "make: needs Python 3.10 or newer as '$(PYTHON)'; install it, or pass PYTHON=python3.12" >&2; exit 1; }; \
		echo "make: creating $(VENV) (a virtual environment with pip)"; rm -rf $(VENV); \
		$(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); \
			echo "make: '$(PYTHON) -m venv $(VENV)' did not give a venv with pip. On Debian/Ubuntu install" >&2; \
			echo "      the venv package: sudo apt install python3-venv (or python3.X-venv), then run make again." >&2; \
			exit 1; }; \
	fi
	$(BIN)/python -m pip install -r requirements.txt -e .
	touch $(STAMP)

setup: $(STAMP)

# The project's JupyterLab settings (jupyter/overrides.json: no news pop-up, no update check),
# installed into the venv where JupyterLab reads them.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_SETTINGS): jupyter/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp jupyter/overrides.json $@

lab: setup $(LAB_SETTINGS)
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/

# The main track and the latent explorer run in JupyterLab in Chromium (/usr/bin/chromium, driven
# by Playwright, installed here on first use): fails on what an attendee would see go wrong;
# one screenshot per notebook in lab-screenshots/. A few: make lab-check LAB_NOTEBOOKS=notebooks/03_training.ipynb
LAB_NOTEBOOKS ?=
lab-check: pretrain
	$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/python -m pip install playwright
	$(CACHE_ONLY) $(BIN)/python scripts/lab_check.py $(LAB_NOTEBOOKS)

# Train the models the notebooks use (listed in scripts/pretrain.py), $(JOBS) at a time, one thread each.
pretrain: setup
	$(RUN) $(BIN)/python scripts/pretrain.py --jobs $(JOBS)

# Unit tests, then every notebook (nbval) from the cache only, $(JOBS) pytest workers, one notebook per worker.
test: pretrain
	$(RUN) $(ONE_THREAD) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope tests
	$(RUN) $(ONE_THREAD) $(CACHE_ONLY) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope notebooks

unit: setup
	$(RUN) $(ONE_THREAD) $(BIN)/python -m pytest tests

# The notebooks again with each parameter set, in scratch copies (PARAMS_OUT/<set>): first the set's
# models are trained (pretrain), then the notebooks run from the cache only; fails on any error.
params-check: setup
	@run_sets() { echo "$$1" | tr ';' '\n' | while read -r set; do \
		[ -n "$$set" ] || continue; echo "== params-check, $$2: $$set"; \
		$(RUN) $(ONE_THREAD) $(BIN)/python scripts/pretrain.py --jobs $(JOBS) --set $$set -- $$3 || exit 1; \
		$(RUN) $(ONE_THREAD) $(CACHE_ONLY) $(BIN)/python scripts/run_params.py --jobs $(JOBS) \
			--out $(PARAMS_OUT)/$$(echo $$set | tr ' =' '_-') --set $$set -- $$3 || exit 1; \
	done; }; \
	run_sets '$(PARAMS)' "every notebook" "notebooks/[0-9][0-9]_*.ipynb" && \
	run_sets '$(PARAMS_MAIN)' "main track" "notebooks/0[1-6]_*.ipynb"

# Execute every notebook top to bottom in place: regenerates outputs and images/.
notebooks: pretrain
	cd notebooks && for nb in [0-9][0-9]_*.ipynb; do \
		echo "== $$nb"; \
		env -u MPLBACKEND TQDM_DISABLE=1 $(CACHE_ONLY) ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=1800 "$$nb" || exit 1; \
	done

# The main track (01-06) as an attendee runs it from an empty model cache, timed (scratch
# copies and a scratch cache under $(COLD_OUT); the usual caches, shared ones too, stay unread).
COLD_OUT ?= /tmp/aelib-cold-main
cold-main: setup
	rm -rf $(COLD_OUT)
	@start=$$(date +%s); \
	env -u AELIB_CACHE_ONLY -u AELIB_SHARED_CHECKPOINT_DIR AELIB_CHECKPOINT_DIR=$(COLD_OUT)/checkpoints \
		$(RUN) $(BIN)/python scripts/run_params.py --jobs 1 \
		--out $(COLD_OUT) -- notebooks/0[1-6]_*.ipynb || exit 1; \
	echo "main track 01-06 from an empty model cache: $$(( $$(date +%s) - start )) s"

bench: setup
	$(BIN)/python bench/bench_train.py

# Delete the cached models in AELIB_CHECKPOINT_DIR (a relative path is read from the repository
# root), else checkpoints/; only the cache's own files. A shared read-only cache is left alone.
clean-cache:
	@dir="$${AELIB_CHECKPOINT_DIR:-checkpoints}"; echo "removing the cached models in $$dir"; \
		rm -f "$$dir"/*.pt "$$dir"/*.pt.tmp "$$dir"/.*.lock "$$dir"/*.lock
