#!/usr/bin/env bash
# pyspnego (PyPI) — the independent NTLM/Kerberos acceptor of the WinRM stand-in
# (test/helpers/wsman-auth-proxy.py) — with python-gssapi and krb5 (its Kerberos extra; both build
# against libkrb5-dev), in the venv under the cache dir shared with scripts/schemathesis.sh.
#   scripts/pyspnego.sh --install-only        create/refresh the venv (called by .ci/run)
set -euo pipefail
PYSPNEGO_VERSION=0.12.4
GSSAPI_VERSION=1.12.0
KRB5_VERSION=0.10.0
cache="${HOSTFLOW_CACHE_DIR:-$HOME/.cache/hostflow}"
venv="$cache/venv"
py="$venv/bin/python"

installed() {
  "$py" - "$@" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
want = dict(a.split("=") for a in sys.argv[1:])
sys.exit(0 if all(m.version(k) == v for k, v in want.items()) else 1)
PY
}

install() {
  if [ -x "$py" ] && installed "pyspnego=$PYSPNEGO_VERSION" "gssapi=$GSSAPI_VERSION" "krb5=$KRB5_VERSION"; then
    return 0
  fi
  command -v python3 >/dev/null || { echo "pyspnego needs python3 (>= 3.9) with venv" >&2; exit 1; }
  command -v krb5-config >/dev/null || { echo "python-gssapi/krb5 build against libkrb5-dev (apt-get install libkrb5-dev)" >&2; exit 1; }
  mkdir -p "$cache"
  [ -x "$py" ] || python3 -m venv "$venv" || { echo "python3 -m venv failed: install python3-venv" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "pyspnego==$PYSPNEGO_VERSION" "gssapi==$GSSAPI_VERSION" "krb5==$KRB5_VERSION"
}

case "${1:-}" in
  --install-only) install; "$py" -c "import spnego, gssapi, krb5; print('pyspnego', spnego.__version__ if hasattr(spnego, '__version__') else '$PYSPNEGO_VERSION')" ;;
  *) echo "usage: $0 --install-only" >&2; exit 2 ;;
esac
