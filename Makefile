# leadflow — the two commands: `make run` and `make test`. Needs only Python 3.11+.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test fuzz openapi lint bench chaos clean-data

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## API + worker; embedded PostgreSQL/Redis under ./.leadflow unless DATABASE_URL/REDIS_URL are set
	$(BIN)/leadflow run

test: $(STAMP)  ## the whole suite against real PostgreSQL and Redis (embedded unless TEST_DATABASE_URL/TEST_REDIS_URL)
	$(BIN)/python -m pytest -q

fuzz: $(STAMP)  ## new random inputs: the contract (200 requests per operation) and the property tests; a failure prints its seed
	LEADFLOW_FUZZ_EXPLORE=1 LEADFLOW_FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest -q \
		tests/test_contract_fuzz.py tests/domain/intake/test_properties.py

openapi: $(STAMP)  ## regenerate the checked-in contract
	$(BIN)/leadflow openapi

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)  ## intake vs floor, assignment burst, intake at 10 k vs 1 M stored leads (needs wrk)
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/assign.py
	$(BIN)/python bench/growth.py

chaos: $(STAMP)  ## the fault suite: 5,000 leads through worker kills, Redis/PostgreSQL restarts, a WeCom outage
	$(BIN)/python chaos/run.py

clean-data:  ## stop nothing, delete the embedded servers' data
	rm -rf .leadflow
