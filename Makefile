# The two commands of the README: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins an older `packaging` than pytest accepts, so it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: install demo test test-fast lint bench bench-scale chaos chaos-api package lock clean word-vectors provider-schema

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov>=3.2,<4'
	touch $(CHECKOV_STAMP)

install: $(STAMP)

# Pretrained title word vectors (chiVe, from the ja-ginza wheel, hash-pinned in word_vectors/requirements.txt):
# `saikika train --word-vectors`, and the titles-only quality floor in `make test`.
WORD_VECTORS := .cache/word-vectors/ja-ginza-5.3.0.npz
$(WORD_VECTORS): word_vectors/requirements.txt shared/saikika/tooling/word_vectors_import.py $(STAMP)
	$(BIN)/pip download --quiet --no-deps --require-hashes -r word_vectors/requirements.txt --dest .cache/word-vectors
	$(BIN)/saikika word-vectors import .cache/word-vectors/ja_ginza-5.3.0-py3-none-any.whl --out $@

word-vectors: $(WORD_VECTORS)

# The google provider's schema (cdktn-provider-google, hash-pinned in tests/provider_schema_requirements.txt),
# downloaded without its dependencies and never installed: tests/unit/test_terraform_schema.py reads the jsii
# manifest out of the wheel, in place of `terraform validate` (which needs the provider itself).
PROVIDER_SCHEMA := .cache/provider-schema/cdktn_provider_google-19.10.0-py3-none-any.whl
$(PROVIDER_SCHEMA): tests/provider_schema_requirements.txt $(STAMP)
	$(BIN)/pip download --quiet --no-deps --require-hashes -r tests/provider_schema_requirements.txt --dest .cache/provider-schema

provider-schema: $(PROVIDER_SCHEMA)

demo: $(STAMP)
	$(BIN)/saikika demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Test files are spread over TEST_WORKERS processes (pytest-xdist), a file's tests together on one, so its fixtures
# (a stack, a trained model) are built once. Each worker's stacks reserve their own ports (saikika.tooling.ports).
TEST_WORKERS ?= 2

test: lint $(CHECKOV_STAMP) $(WORD_VECTORS) $(PROVIDER_SCHEMA)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=30 $(PYTEST_ARGS)

# The pure tests alone, while editing (docs/testing.md): no emulators, no .venv-checkov, no downloads, no word
# vectors built; the tests marked slow (tests/conftest.py, by path) are left to `make test`.
test-fast: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

# The benchmark has a venv of its own: MLServer (the peer) brings dependencies the product does not need.
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) $(STAMP) $(WORD_VECTORS)
	$(BENCH_VENV)/bin/python bench/run.py --out bench/results.json $(BENCH_ARGS)
	$(BIN)/python bench/api.py --out bench/api.json

# The loop at marketplace scale (history sweep, 100k–1M training rows, 256 labels through a hot swap);
# writes bench/scale.json. Tens of minutes on 2 cores.
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py --out bench/scale.json

# The fault-injection suite at full size (a short version runs in `make test`); writes bench/chaos.json.
chaos: $(STAMP) chaos-api
	$(BIN)/python bench/chaos.py --out bench/chaos.json

# schemathesis against the live predict_http at length (make test runs 40 examples per operation).
chaos-api: $(STAMP)
	SCHEMATHESIS_EXAMPLES=1000 $(BIN)/pytest tests/integration/test_fuzz_http.py -k schemathesis -p no:cacheprovider --timeout 3600

# One reproducible zip per function under build/functions/ (what terraform uploads).
package: $(STAMP)
	$(BIN)/saikika package --out build/functions

# Re-pin functions/<name>/requirements.txt from the installed environment.
lock: $(STAMP)
	$(BIN)/saikika package --lock --out build/functions

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(BENCH_VENV) .saikika build .pytest_cache .cache
