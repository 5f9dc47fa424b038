#!/usr/bin/env bash
# Sets everything up, then runs the linters and the whole test suite headless.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test cluster  # cluster: Ray, for tests/test_cluster.py (about 20 s to install)
export QT_QPA_PLATFORM=offscreen
.venv/bin/ruff check devise_app tests scripts
.venv/bin/ruff format --check --quiet devise_app tests scripts
.venv/bin/mypy devise_app
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
