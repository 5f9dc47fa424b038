#!/usr/bin/env bash
# Issue 12's full no-network check: strace watches a window left open 60 s and an
# index of 4,000 photos (CI runs the same tests with 12 s and 12 photos).
# Usage: scripts/no-network-soak.sh [seconds] [photos]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test >/dev/null
export DEVISE_APP_SOAK_S="${1:-60}" DEVISE_APP_SOAK_PHOTOS="${2:-4000}" QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -p no:cacheprovider -s -v tests/reliability/test_no_network.py
