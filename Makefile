# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo run test bench bench-read bench-accounts migrate clean lint-deploy

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q archiver migrations  # as pip does for an installed package (see bench/run.py)
	touch $(STAMP)

demo: $(STAMP)  ## simulated SendZen + Infobip and the daemon on SQLite, no credentials
	$(BIN)/archiver demo

run: $(STAMP)  ## the daemon with ./config.toml (copy config.example.toml first)
	$(BIN)/archiver run

migrate: $(STAMP)
	$(BIN)/archiver migrate

test: $(STAMP)  ## unit + integration tests on SQLite and a throwaway PostgreSQL 15
	$(BIN)/pytest -q

PEER ?=
bench: $(STAMP) $(if $(filter dlt,$(PEER)),.venv-dlt/.installed)  ## figures as ratios to baselines; PEER=dlt adds dlt
	$(BIN)/python bench/run.py $(if $(PEER),--peer $(PEER))
	$(BIN)/python bench/read_side.py
	$(BIN)/python bench/accounts.py

.venv-dlt/.installed:  ## the peer in its own virtualenv: dlt's rest_api source with its SQLAlchemy destination
	$(PYTHON) -m venv .venv-dlt
	.venv-dlt/bin/pip install --quiet "dlt[sqlalchemy]"
	touch $@

bench-accounts: $(STAMP)  ## 50 accounts in one daemon, three daemons sharing 60, status on 10M rows
	$(BIN)/python bench/accounts.py

bench-read: $(STAMP)  ## the read side and the lifecycle on 1,000,000 archived messages
	$(BIN)/python bench/read_side.py

clean:
	rm -rf $(VENV) .venv-dlt demo .pytest_cache
