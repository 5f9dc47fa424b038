#!/usr/bin/env bash
# Sets everything up, then opens the app on the shipped default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/devise-app "$@"
