PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m mmtask.demo --out $(DEMO_DIR)

test: $(VENV)/.installed
	$(BIN)/ruff check mmtask tests benchmarks
	$(BIN)/python -m pytest --cov --cov-report=term

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/train_step.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
