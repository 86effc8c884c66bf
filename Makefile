# The two commands: `make run` (set up and serve the demo) and `make test` (set up and test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
HOST ?= 127.0.0.1
export INTEGRITY_POS_HOME ?= $(CURDIR)/instance

.PHONY: run test test-pg test-e2e lint format bench bench-declarations bench-offline fuzz soak install translations clean

$(BIN)/integrity-pos: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/integrity-pos translations

translations: $(BIN)/integrity-pos
	$(BIN)/pybabel compile --statistics -d translations

run: install
	$(BIN)/integrity-pos init-db
	$(BIN)/integrity-pos seed-demo --skip-if-seeded
	$(BIN)/integrity-pos serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The suite on both backends, PostgreSQL in a fresh database of its own as in CI (.ci/run),
# dropped afterwards whatever the outcome.
PGHOST ?= 127.0.0.1
PGPORT ?= 5432
test-pg: install
	@db=integrity_pos_test_$$$$; \
	psql -q -h $(PGHOST) -p $(PGPORT) -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $$db" \
		-c "CREATE DATABASE $$db ENCODING 'UTF8' TEMPLATE template0" || exit 1; \
	TEST_DATABASE_URL=postgresql://postgres@$(PGHOST):$(PGPORT)/$$db \
		$(MAKE) --no-print-directory test; status=$$?; \
	psql -q -h $(PGHOST) -p $(PGPORT) -U postgres -d postgres \
		-c "DROP DATABASE IF EXISTS $$db WITH (FORCE)" >/dev/null; \
	exit $$status

# Every end-to-end scenario of the shop node (tests/nodes/e2e: real county and node
# processes, a cuttable line), the slow ones included, on SQLite and on PostgreSQL;
# `make test` runs them all on SQLite and the core ones on PostgreSQL.
test-e2e: install
	@db=integrity_pos_e2e_$$$$; \
	psql -q -h $(PGHOST) -p $(PGPORT) -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $$db" \
		-c "CREATE DATABASE $$db ENCODING 'UTF8' TEMPLATE template0" || exit 1; \
	E2E_FULL=1 TEST_DATABASE_URL=postgresql://postgres@$(PGHOST):$(PGPORT)/$$db \
		$(BIN)/pytest -q $(PYTEST_ARGS) tests/nodes/e2e; status=$$?; \
	psql -q -h $(PGHOST) -p $(PGPORT) -U postgres -d postgres -c "DROP DATABASE IF EXISTS $$db WITH (FORCE)" \
		-c "DROP DATABASE IF EXISTS $${db}_county WITH (FORCE)" >/dev/null; \
	exit $$status

lint: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Extract user-facing strings and merge them into each language's catalogue.
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -o translations/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update --no-fuzzy-matching -i translations/messages.pot -d translations

# Each script resets the tables of its own PostgreSQL database (see its docstring).
bench: install
	-createdb -h 127.0.0.1 -U postgres ipos_bench 2>/dev/null
	-createdb -h 127.0.0.1 -U postgres ipos_bench_checkout 2>/dev/null
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/checkout.py
	$(BIN)/python bench/receipts.py
	$(BIN)/python bench/counter.py

# The county's reports on 130,000 households and 10 million transfers (bench/reports.py).
bench-reports: install
	-createdb -h 127.0.0.1 -U postgres ipos_bench_reports 2>/dev/null
	$(BIN)/python bench/reports.py

# Declarations: photo intake over HTTP (3 MB JPEGs, two clients) and the duplicate look-up
# against 100,000 stored hashes (bench/declarations.py).
bench-declarations: install
	-createdb -h 127.0.0.1 -U postgres ipos_bench_declarations 2>/dev/null
	$(BIN)/python bench/declarations.py

# The shop node: first and idle sync of 130,000 households, offline checkout, the drain
# (bench/offline.py; it recreates its own database ipos_bench_offline).
bench-offline: install
	$(BIN)/python bench/offline.py

# Longer than `make test` allows: many more fuzzed examples and invariant steps.
fuzz: install
	FUZZ_EXAMPLES=200 INVARIANT_EXAMPLES=300 INVARIANT_STEPS=60 \
		$(BIN)/pytest -q -s -p no:cacheprovider tests/test_api_fuzz.py tests/test_invariants.py

# Ten minutes of 13 counters and an award importer against the production server.
soak: install
	-createdb -h 127.0.0.1 -U postgres ipos_soak 2>/dev/null
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
