# Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck unit bench certs clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devtools.devenv
	@echo "Try:  kubectl --kubeconfig .dev/kubeconfig api-resources --api-group=search.task.example.example.com"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m devtools.procfile web

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

test: $(STAMP) lint typecheck
	$(BIN)/pytest -n 2

bench: $(STAMP)
	$(BIN)/python -m bench

# Certificates for a cluster without cert-manager: writes the overlay k8s/manifests/local
# (STORE=postgres for three replicas on PostgreSQL).
certs: $(STAMP)
	$(BIN)/python -m devtools.clustercerts $(if $(filter postgres,$(STORE)),--postgres)

clean:
	rm -rf $(VENV) .dev .mypy_cache .ruff_cache .pytest_cache
