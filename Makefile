# Two entry points (see README): `make reproduce` and `make test`. Each creates .venv and installs ddnb if missing.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.ddnb-installed
PROFILE ?= mini

.PHONY: reproduce test install

install: $(STAMP)

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/ddnb reproduce --profile $(PROFILE)

test: $(STAMP)
	@echo "== export drift: nbs/ vs ddnb/"
	$(BIN)/nbdev_export
	@git status --porcelain -- ddnb | grep . && { echo "ddnb/ is out of step with nbs/: run nbdev_export and commit"; git diff --stat -- ddnb; exit 1; } || true
	@echo "== notebooks are clean"
	$(BIN)/nbdev_clean
	@git status --porcelain -- nbs | grep . && { echo "notebooks carry outputs or metadata: run nbdev_clean and commit"; exit 1; } || true
	@echo "== nbdev_test"
	OMP_NUM_THREADS=1 DDNB_PROGRESS=0 $(BIN)/nbdev_test --n_workers 2 --timing
	@echo "== pytest (end-to-end)"
	DDNB_PROGRESS=0 $(BIN)/pytest -q nbs/tests
