#!/usr/bin/env bash
# Schemathesis (from PyPI) in a venv under the cache dir, created once.
#   scripts/schemathesis.sh --install-only        create/refresh the venv (called by .ci/run)
#   scripts/schemathesis.sh run <args...>         run `schemathesis run <args...>` from the venv
set -euo pipefail
SCHEMATHESIS_VERSION=4.32.5
cache="${HOSTFLOW_CACHE_DIR:-$HOME/.cache/hostflow}"
venv="$cache/venv"
st="$venv/bin/schemathesis"

install() {
  if [ -x "$st" ] && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
    return 0
  fi
  command -v python3 >/dev/null || { echo "schemathesis needs python3 (>= 3.9) with venv" >&2; exit 1; }
  mkdir -p "$cache"
  python3 -m venv "$venv" || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

case "${1:-}" in
  --install-only) install; "$st" --version ;;
  run) shift; install; exec "$st" run "$@" ;;
  *) echo "usage: $0 --install-only | run <schemathesis run args>" >&2; exit 2 ;;
esac
