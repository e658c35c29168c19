#!/usr/bin/env bash
# Install everything the test suite needs (system packages for the real SIP
# clients, the project with its test extras in ./.venv, see venv.sh) and run the whole suite.
# PYTHON=/path/to/python3 VENV=.venv-3.12 pick another interpreter and venv (scripts/test-pythons.sh).
# Arguments go to pytest (e.g. -m "not e2e" for the fast part).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=""
command -v baresip >/dev/null || need="$need baresip-core"
command -v sipp >/dev/null || need="$need sip-tester"
command -v sox >/dev/null || need="$need sox"
# The cluster tests (tests/cluster): Kamailio in front with ndb_redis, and a redis-server
# (cluster mode's own tests start one too: tests/support/redis_server.py).
command -v kamailio >/dev/null || need="$need kamailio"
[ -n "$(find /usr/lib -name ndb_redis.so -print -quit 2>/dev/null)" ] || need="$need kamailio-redis-modules"
command -v redis-server >/dev/null || need="$need redis-server"
# The Opus decoder calls the system libopus for in-band FEC (codecs/libopus.py).
ldconfig -p | grep -q "libopus\.so\.0" || need="$need libopus0"
# G.722 decoding with a state we own (codecs/libspandsp.py); baresip-core brings it too.
ldconfig -p | grep -q "libspandsp\.so\.2" || need="$need libspandsp2"
# The join page's tests: Debian's chromium, driven by Playwright (pip) through executable_path.
[ -x /usr/bin/chromium ] || need="$need chromium"
# pesq (the audio-quality test scores speech with it) is built from source: a C compiler and headers.
command -v gcc >/dev/null || need="$need gcc"
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
  || need="$need python3-dev"
if [ -n "$need" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $need
fi
. scripts/venv.sh
# constraints.txt pins every library to the versions the suite last passed with (see its header).
"$PY" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
# Test files run on TUTTI_TEST_WORKERS pytest-xdist workers (2 by default; 0 runs them in this
# process). Most e2e time is real-time audio, so two files at once halve the wall time on two
# cores. A file stays on one worker (--dist loadfile: its module fixtures are shared), and each
# worker takes ports from its own share of the range (tests/e2e/peers/ports.py).
workers="${TUTTI_TEST_WORKERS:-2}"
exec "$PY" -m pytest -n "$workers" --dist loadfile "$@"
