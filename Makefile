# Two entry points (see README): `make reproduce` and `make test`. Each creates .venv and installs ddnb if missing,
# with the exact versions of requirements.lock (`make lock` regenerates it from a clean venv).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.ddnb-installed
PROFILE ?= mini
# .pyc files are written on first import (the install skips byte-compiling all of torch: --no-compile below)
unexport PYTHONDONTWRITEBYTECODE
# the notebooks whose numerics must hold on any x86 CPU: run a second time on ATen's baseline kernels
NUMERIC_NBS = nbs/03_ddim.ipynb nbs/03b_samplers.ipynb nbs/06_finetune.ipynb nbs/07_d3hr.ipynb nbs/07b_dmgd.ipynb nbs/07c_igds.ipynb nbs/08_s3.ipynb nbs/11_students.ipynb nbs/12_evaluate.ipynb nbs/13_batched.ipynb
LINUX_X86 = ; platform_system == "Linux" and platform_machine == "x86_64"

.PHONY: reproduce test install lock faults test-slurm gpu-check docs docs-serve

install: $(STAMP)

$(STAMP): settings.ini setup.py requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile -r requirements.lock   # no byte-compiling of all of torch: 1.7 min instead of 3.5 here; imports write theirs
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/ddnb reproduce --profile $(PROFILE)

# the tests' temporary folders (tiny worlds, caches, grids) go to .test-tmp/, emptied at the start and the end of a run
test: export TMPDIR = $(CURDIR)/.test-tmp
test: $(STAMP)
	rm -rf .test-tmp && mkdir -p .test-tmp
	@echo "== export drift: nbs/ vs ddnb/"
	$(BIN)/nbdev_export
	@git status --porcelain -- ddnb | grep . && { echo "ddnb/ is out of step with nbs/: run nbdev_export and commit"; git diff --stat -- ddnb; exit 1; } || true
	@echo "== notebooks are clean"
	$(BIN)/nbdev_clean
	@git status --porcelain -- nbs | grep . && { echo "notebooks carry outputs or metadata: run nbdev_clean and commit"; exit 1; } || true
	@echo "== nbdev_test"
	OMP_NUM_THREADS=1 DDNB_PROGRESS=0 $(BIN)/nbdev_test --n_workers 2 --timing
	@echo "== nbdev_test of the numerics notebooks on ATen's baseline CPU kernels (as another CPU would pick)"
	printf '%s\n' $(NUMERIC_NBS) | xargs -P 2 -I{} sh -c 'ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 DDNB_PROGRESS=0 $(BIN)/nbdev_test --path {} --do_print || { echo "FAILED on baseline kernels: {}"; exit 1; }'
	@sh scripts/need_chromium.sh
	@echo "== pytest (end-to-end), two workers, one thread each: xdist group a (paper-tiny grid, fault battery) beside group b (smoke grid and the rest)"
	OMP_NUM_THREADS=1 DDNB_PROGRESS=0 $(BIN)/pytest -q -n 2 --dist loadgroup --durations=10 -p no:cacheprovider nbs/tests
	rm -rf .test-tmp

# The docs site, offline (docs/build.py: Sphinx + myst-nb, no Quarto): every lesson notebook executed as nbdev_test runs
# it (two at a time, one thread each; executions cached in .docs-build/ by notebook and ddnb/*.py), the reports of
# reports/*/, the API reference -> _docs/ (open _docs/index.html, or make docs-serve: http://127.0.0.1:8000)
docs: $(STAMP)
	OMP_NUM_THREADS=1 DDNB_PROGRESS=0 $(BIN)/python docs/build.py --jobs 2 --out _docs

docs-serve:
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _docs 8000

# Local vs Slurm: the smoke profile run locally and through a one-node Slurm started here (root, Debian: apt-get);
# the top1 of every row must match. Folders under .test-tmp/slurm/; Slurm is stopped at the end (scripts/)
test-slurm: $(STAMP)
	bash scripts/test_slurm.sh

# The fault battery (kill -9, damaged caches and results, concurrent runs, full disk, bad inputs): one table
faults: $(STAMP)
	$(BIN)/ddnb check

# Regenerate requirements.lock: a clean venv with the ranges of settings.ini, frozen. Commit the result.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip setuptools wheel
	.lock-venv/bin/python -m pip install -q -e '.[dev]'
	{ echo "# Exact versions that make reproduce and make test install; make lock regenerates this file from a clean venv."; \
	  echo "# Made with $$(.lock-venv/bin/python -c 'import platform as p; print("CPython", p.python_version(), "on", p.system(), p.machine())'). Library users: pip install -e . takes the ranges of settings.ini."; \
	  .lock-venv/bin/python -m pip freeze --all --exclude-editable | sed -E '/^(nvidia-|cuda-|triton)/ s/$$/$(LINUX_X86)/'; \
	} > requirements.lock.tmp && mv requirements.lock.tmp requirements.lock && rm -rf .lock-venv
	@grep -vc '^#' requirements.lock | xargs echo "requirements.lock: packages:"

# The prepared GPU check (one table, <= 10 min on one H100): DiT-XL/2 bf16 forwards, D3HR group sampling vs the official
# loop, batched students at 224 px, paper-tiny on --devices auto, --compile. ARGS="--python .venv/bin/python --dry-run --device cpu"
# runs it small on this CPU;
# ARGS=--download-wheels fetches the wheels a bare GPU machine lacks into .wheels/ (git-ignored).
gpu-check:
	bash scripts/gpu_check.sh $(ARGS)
