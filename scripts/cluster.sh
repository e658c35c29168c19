#!/usr/bin/env bash
# A local cluster on loopback: redis-server, N bridge nodes, Kamailio in front (README "Running several
# nodes"). `scripts/cluster.sh up [N]` starts it (or grows it to N nodes and reloads Kamailio's node
# list); `scripts/cluster.sh down` stops what it started; `status`. Files go under run/cluster/.
# Needs kamailio, kamailio-redis-modules and redis-server (apt); the bridge is installed into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
for bin in kamailio kamcmd redis-server; do
  command -v "$bin" >/dev/null || { echo "$bin missing: apt-get install kamailio kamailio-redis-modules redis-server" >&2; exit 1; }
done
if [ "${1:-}" = "up" ]; then
  . scripts/venv.sh
  "$PY" -m pip install --quiet --disable-pip-version-check -e .
else
  PY="${PY:-python3}"
  [ ! -x .venv/bin/python ] || PY=.venv/bin/python
fi
exec "$PY" scripts/cluster.py "$@"
