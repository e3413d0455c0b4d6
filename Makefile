# One-command entry points. `make test` and `make demo` run `make setup` first, so each works on a
# fresh clone. GPU hosts: `make setup GPU=1` installs onnxruntime-gpu instead of the CPU build.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
GPU ?= 0
PY := $(VENV)/bin/python
ORT := requirements/onnxruntime-$(if $(filter 1,$(GPU)),gpu,cpu).txt
STAMP := $(VENV)/.setup-$(if $(filter 1,$(GPU)),gpu,cpu)
CYCLONEDDS_HOME := $(CURDIR)/$(VENV)/cyclonedds-home
PYTEST_ARGS ?=

.PHONY: setup test lint demo bench clean

setup: $(STAMP)

$(STAMP): requirements/*.txt setup.py setup.cfg scripts/install_system_deps.sh scripts/build_tf2_msgs.sh
	scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/base.txt -r $(ORT) -c requirements/constraints.txt
	mkdir -p $(CYCLONEDDS_HOME)
	ln -sfn /usr/include $(CYCLONEDDS_HOME)/include
	ln -sfn /usr/bin $(CYCLONEDDS_HOME)/bin
	ln -sfn /usr/lib/$$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu) $(CYCLONEDDS_HOME)/lib
	CYCLONEDDS_HOME=$(CYCLONEDDS_HOME) $(PY) -m pip install -q -r requirements/g1.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	scripts/build_tf2_msgs.sh $(VENV)
	rm -f $(VENV)/.setup-*
	touch $@

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/spatial-trace demo --out demo_out

bench: setup
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache build *.egg-info
