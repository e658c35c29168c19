# Sourced by scripts/run.sh and scripts/test.sh (after `cd` to the repository and setting SUDO).
# Sets PY to the Python to install into and run with: the active virtualenv if there is one,
# else ./.venv, created on first use. A distribution's own python3 refuses `pip install`
# into itself (PEP 668, "externally-managed-environment"), so the project gets its own venv;
# Debian ships venv's pip separately (python3-venv), installed here when missing.
if [ -n "${VIRTUAL_ENV:-}" ]; then
  PY="$VIRTUAL_ENV/bin/python"
else
  if [ ! -x .venv/bin/python ]; then
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || { echo "tutti-bridge needs Python 3.11 or newer (python3 is $(python3 --version))" >&2; exit 1; }
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-venv
    fi
    python3 -m venv .venv
  fi
  PY="$PWD/.venv/bin/python"
fi
