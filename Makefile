# The two commands: `make run` serves the site (gunicorn and the webhook delivery worker,
# scripts/run_site.py), `make test` runs the whole suite.
# `make manage ARGS='createuser erin --password …'` runs a manage.py command on the
# site `make run` serves: both read the same variables, and without FORGE_DATA_DIR
# both use data/ in this checkout.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin

.PHONY: run manage test lint format check dist clean

$(BIN)/python:
	$(PYTHON) scripts/make_venv.py $(VENV)

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

run: $(VENV)/.run-deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py ensureadmin
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python scripts/run_site.py $(BIN)/python $(BIN)/gunicorn

manage: $(VENV)/.run-deps
	$(BIN)/python manage.py $(ARGS)

# Bytecode written whatever the shell says: without its cache pytest compiles and
# rewrites the asserts of ~400 modules on every run, 7 s before the first test.
test: $(VENV)/.dev-deps
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-deps
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	FORGE_DATA_DIR=$$(mktemp -d) $(BIN)/python manage.py makemigrations --check --dry-run

format: $(VENV)/.dev-deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: $(VENV)/.run-deps
	$(BIN)/python manage.py check --deploy --fail-level ERROR

# The wheel and sdist of the two apps (django-forge-registry), in dist/.
dist: $(VENV)/.dev-deps
	$(BIN)/python -m build --outdir dist .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
