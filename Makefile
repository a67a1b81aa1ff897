# `make test` and `make dev` work from a fresh clone: they make .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test dev lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

dev: $(STAMP)
	$(BIN)/python scripts/dev.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Deploying (README.md, "Deploying to AWS"). STAGE is a deployed stage of .chalice/config.json.
# Both scripts run chalice with MAILS_QUEUE and SES_QUEUE set to the stage's queues
# (app.py reads them at import to wire hand_off and receive_ses), whatever the
# shell says. The SES ingress is switched on at `aws cloudformation deploy` time
# (--parameter-overrides EnableSes=true SesRecipients=...), not here.
STAGE ?= dev

.PHONY: deploy package

deploy: $(STAMP)
	$(BIN)/python scripts/deploy.py --stage $(STAGE)

package: $(STAMP)
	$(BIN)/python scripts/package.py --stage $(STAGE)
