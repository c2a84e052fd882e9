# roberta-cli: `make demo` (install + a small end-to-end run), `make test` (`make test-fast`: unit
# tests only).
# Variables: PYTHON (the interpreter that creates .venv), TORCH (the torch requirement;
# set TORCH= to keep a torch that is already in the venv, e.g. a CUDA build), DATA (demo corpus).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: install demo test test-fast clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# omegaconf 2.0.6 (pinned by fairseq 0.12.2) declares `PyYAML>=5.1.*`, which pip >= 24.1 rejects
	$(PIP) install -q "pip<24.1"
	# torch before anything that depends on it, else pip pulls a multi-GB CUDA build
	$(if $(TORCH),$(PIP) install -q "$(TORCH)")
	$(PIP) install -q -e ".[test]"
	# fairseq pulls torchaudio, which nothing here uses and whose 2.11 build does not load with
	# torch 2.13 (and then breaks `import transformers`)
	$(PIP) uninstall -q -y torchaudio || true
	$(PY) -c "import fairseq, roberta_cli.hub; print('fairseq', fairseq.__version__, 'ok')"
	touch $@

demo: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash recipes/demo.sh

test: install
	$(PY) -m pytest -q

test-fast: install  # the unit tests alone, under a minute; `make test` runs them and the e2e ones
	$(PY) -m pytest -q -m "not e2e"

clean:
	rm -rf $(VENV) build *.egg-info
