#!/usr/bin/env bash
# Sets up everything devise-app needs on a fresh Debian/Ubuntu machine (or any
# machine where the system libraries are already present): Qt's system libraries
# when apt-get is available, then a virtual environment in .venv with the app.
# Usage: scripts/setup.sh [extra ...]   e.g. scripts/setup.sh test cluster
set -euo pipefail
cd "$(dirname "$0")/.."

system_packages=(libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0
         libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
         libxcb-render-util0 libxcb-image0 wordnet-base wamerican-large)
# the tests watch the app's system calls from outside (tests/reliability/test_no_network.py)
[[ " $* " == *" test "* ]] && system_packages+=(strace)
if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  missing=()
  for pkg in "${system_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    echo "Installing system libraries: ${missing[*]}"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extras=""
[ $# -gt 0 ] && extras="[$(IFS=,; echo "$*")]"

# Reinstall only when the package's definition or the extras changed: the editable
# install picks up code changes by itself, and a run with nothing to do stays quiet.
stamp=".venv/.devise-app-installed"
definition=$(sha256sum pyproject.toml | cut -d' ' -f1)
installed_definition="" installed_extras=""
if [ -f "$stamp" ]; then read -r installed_definition installed_extras < "$stamp" || true; fi
# Up to date when the definition is the one installed and every extra asked for
# was installed with it (scripts/run-app.sh after scripts/test.sh installs nothing).
up_to_date=false
if [ "${installed_definition:-}" = "$definition" ]; then
  up_to_date=true
  for extra in "$@"; do
    [[ ",${installed_extras:-}," == *",$extra,"* ]] || up_to_date=false
  done
fi
if [ "$up_to_date" != true ]; then
  echo "Installing devise-app${extras} into .venv (a minute or two the first time)…"
  log=$(mktemp)
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".${extras}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  echo "$definition $(IFS=,; echo "$*")" > "$stamp"
fi
