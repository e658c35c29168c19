#!/usr/bin/env bash
# Run the test suite (or the given pytest arguments) on every supported Python found on this
# machine, each in its own venv (.venv-3.11, .venv-3.12, ...), and print a summary table.
# PYTHONS="3.12 3.13" limits the versions. An interpreter is looked for as the distribution's
# (/usr/bin), /usr/local/bin, pyenv's newest install of that version, then pythonX.Y on PATH.
# Exit status: 0 when every version found passed (a version not installed is only reported).
set -uo pipefail
cd "$(dirname "$0")/.."
versions="${PYTHONS:-3.11 3.12 3.13}"
logdir="$(mktemp -d "${TMPDIR:-/tmp}/tutti-pythons.XXXXXX")"

find_python() {
  local v="$1" cand
  for cand in "/usr/bin/python$v" "/usr/local/bin/python$v" \
      $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v".*/bin/"python$v" 2>/dev/null | sort -V -r) \
      "$(command -v "python$v" 2>/dev/null)"; do
    # A pyenv shim exists for versions that are not selected; only a working binary counts.
    if [ -n "$cand" ] && [ -x "$cand" ] \
        && [ "$("$cand" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$v" ]; then
      echo "$cand"
      return 0
    fi
  done
  return 1
}

rows=()
failed=0
for v in $versions; do
  if ! py="$(find_python "$v")"; then
    rows+=("$v|(not found)|-|skipped|-")
    continue
  fi
  log="$logdir/python$v.log"
  echo "=== Python $v: $py -> .venv-$v (log: $log)" >&2
  start=$SECONDS
  # No activated venv may take over (venv.sh prefers VIRTUAL_ENV).
  env -u VIRTUAL_ENV PYTHON="$py" VENV=".venv-$v" bash scripts/test.sh "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  summary="$(grep -E '[0-9]+ (passed|failed|error|errors|skipped|deselected)' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//;s/ *$//')"
  [ "$rc" -eq 0 ] && verdict="ok" || { verdict="FAILED (exit $rc)"; failed=1; }
  rows+=("$v|$py|$("$py" -c 'import platform; print(platform.python_version())')|$verdict|${summary:-no pytest summary} [$((SECONDS - start)) s]")
done

echo
printf '%-7s %-48s %-9s %-18s %s\n' "python" "interpreter" "version" "verdict" "pytest (wall time incl. install)"
for row in "${rows[@]}"; do
  IFS='|' read -r ver path full verdict summary <<<"$row"
  printf '%-7s %-48s %-9s %-18s %s\n' "$ver" "$path" "$full" "$verdict" "$summary"
done
exit "$failed"
