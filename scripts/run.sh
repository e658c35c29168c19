#!/usr/bin/env bash
# Install the bridge into ./.venv (see venv.sh) and start it; arguments go to the bridge
# (default: --config config.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
. scripts/venv.sh
"$PY" -m pip install --quiet --disable-pip-version-check -e .
[ "$#" -gt 0 ] || set -- --config config.yaml
exec "$PY" -m bridge "$@"
