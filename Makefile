# `make test` and `make dev` work from a fresh clone: they make .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two workers: this machine's two cores. Each starts its own embedded AWS.
WORKERS ?= 2

.PHONY: test quick dev dev-reset lint docs bench load mutate clean chromium

# The last two lines install the `mails` command ([project.scripts] in pyproject.toml), editable:
# it runs scripts/mails.py from this checkout. setuptools >= 64 builds it; Python 3.11's venv has it.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet 'setuptools>=64'
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Everything: lint, types, the docs site, then the tests. The slow ones
# (reliability, load, end to end) run alone afterwards, as they time things.
test: $(STAMP) lint docs chromium
	$(BIN)/python -m pytest -n $(WORKERS) -m "not slow"
	$(BIN)/python -m pytest -m slow

# The console's browser tests drive Debian's Chromium (tests/e2e/test_console_browser.py): installed here when
# missing, where this runs as root with apt (CI does). Elsewhere those tests skip and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }; } || \
	  echo "WARNING: Debian's chromium could not be installed: the console's browser tests will skip"

# The loop while changing code: unit, contract and example tests (80-86 s on two cores); property tests draw a fifth of
# their examples (tests/support/examples.py), `make test` all of them.
quick: $(STAMP)
	EXAMPLES_SCALE=0.2 $(BIN)/python -m pytest -n $(WORKERS) -q tests/unit tests/contract tests/examples

# Mail, queues and credentials outlive a restart, in .dev/ (docs/quickstart.md); dev-reset starts empty.
dev: $(STAMP)
	$(BIN)/python scripts/dev.py

dev-reset:
	rm -rf .dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# --strict: a broken link or anchor fails the build, and so `make test`.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The peer (django-anymail) is installed for the benchmark alone: requirements-bench.txt.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py

# Eight senders posting 10 KB mails to the running `make dev` for 20 s (at most 5,000): mails/s, p50/p99, errors.
load: $(STAMP)
	$(BIN)/python scripts/load.py

# Mutation testing of the modules where a bug loses or leaks mail ([tool.mutmut] in
# pyproject.toml; docs/contributing.md): half an hour and more, so not part of `make test`.
# Its results are kept in mutants/ and reused for functions that did not change.
MUTATE_STAMP := $(VENV)/.mutate-installed

$(MUTATE_STAMP): $(STAMP) requirements-mutate.txt
	$(BIN)/python -m pip install --quiet -r requirements-mutate.txt
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	$(BIN)/mutmut run > .mutmut.log 2>&1 || { tail -c 3000 .mutmut.log; exit 1; }
	$(BIN)/python scripts/mutation_report.py

clean:
	rm -rf $(VENV) site mutants .mutmut.log .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Deploying (docs/operations/deploy.md). STAGE is a deployed stage of .chalice/config.json.
# Both scripts run chalice with MAILS_QUEUE and SES_QUEUE set to the stage's queues
# (the queue consumers read them at import to wire their event sources), whatever the
# shell says. The SES ingress is switched on at `aws cloudformation deploy` time
# (--parameter-overrides EnableSes=true SesRecipients=...), not here.
STAGE ?= dev

.PHONY: deploy package

deploy: $(STAMP)
	$(BIN)/python scripts/deploy.py --stage $(STAGE)

package: $(STAMP)
	$(BIN)/python scripts/package.py --stage $(STAGE)
