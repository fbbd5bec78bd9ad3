# Sourced by scripts/*: create or refresh the project's virtual environment.
# Installs printnet (editable) with its test tools; re-runs pip only when
# pyproject.toml or setup.py changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PRINTNET_VENV:-$ROOT/.venv}"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "printnet needs Python >= 3.11" >&2; exit 1; }
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "installing python3-venv (Debian)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# PRINTNET_EXTRAS: which extras to install ("test" unless set; scripts/demo sets it
# empty: the runtime needs none).  The test extra compiles pyfuse3, so the Debian
# packages of scripts/test-packages (libfuse3-dev, gcc, ...) come first.
EXTRAS="${PRINTNET_EXTRAS-test}"
spec="$ROOT"
[ -z "$EXTRAS" ] || spec="$ROOT[$EXTRAS]"
if [ "$EXTRAS" = "test" ]; then
  source "$ROOT/scripts/_packages.sh"
  install_test_packages "$ROOT/scripts/test-packages"
fi
stamp="$VENV/.printnet-installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e "$spec"
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
