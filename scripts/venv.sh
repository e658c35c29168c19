# Sourced by scripts/run.sh and scripts/test.sh (after `cd` to the repository and setting SUDO).
# Sets PY to the Python to install into and run with: the active virtualenv if there is one,
# else ./.venv, created on first use. A distribution's own python3 refuses `pip install`
# into itself (PEP 668, "externally-managed-environment"), so the project gets its own venv;
# Debian ships venv's pip separately (python3-venv), installed here when missing.
#
# PYTHON picks the interpreter (default: python3 on PATH) and VENV the directory (default:
# .venv); scripts/test-pythons.sh uses both. A venv made by another interpreter (pyenv's,
# an older or removed one) is recreated, so the verdict is always the chosen interpreter's.
if [ -n "${VIRTUAL_ENV:-}" ]; then
  PY="$VIRTUAL_ENV/bin/python"
else
  PYTHON="${PYTHON:-python3}"
  VENV="${VENV:-.venv}"
  command -v "$PYTHON" >/dev/null || { echo "tutti-bridge needs Python 3.11 or newer ($PYTHON not found)" >&2; exit 1; }
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "tutti-bridge needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2; exit 1; }
  # Compare real paths: a pyenv shim, a symlink or a venv's python all lead to one binary.
  want="$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))')"
  have=""
  if [ -f "$VENV/pyvenv.cfg" ]; then
    have="$(sed -n 's/^executable *= *//p' "$VENV/pyvenv.cfg" | head -n 1)"
    [ -z "$have" ] || have="$(realpath -m "$have")"
  fi
  if [ -e "$VENV" ] && { [ "$have" != "$want" ] || ! "$VENV/bin/python" -c 'import pip' 2>/dev/null; }; then
    # (also a venv without pip: what `python3 -m venv` leaves when python3-venv is missing)
    echo "$VENV was made by ${have:-another interpreter} or is broken, want $want: recreating it" >&2
    rm -rf "$VENV"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-venv
    fi
    "$PYTHON" -m venv "$VENV"
  fi
  case "$VENV" in
    /*) PY="$VENV/bin/python" ;;
    *) PY="$PWD/$VENV/bin/python" ;;
  esac
fi
