#!/usr/bin/env bash
# Install everything the test suite needs (system packages for the real SIP
# clients, the project with its test extras in ./.venv, see venv.sh) and run the whole suite.
# Arguments go to pytest (e.g. -m "not e2e" for the fast part).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=""
command -v baresip >/dev/null || need="$need baresip-core"
command -v sipp >/dev/null || need="$need sip-tester"
command -v sox >/dev/null || need="$need sox"
if [ -n "$need" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $need
fi
. scripts/venv.sh
"$PY" -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec "$PY" -m pytest "$@"
