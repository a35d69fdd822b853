#!/usr/bin/env bash
# Sourced by run.sh and test.sh: makes .venv with the project installed, fixing what is missing.
# Usage: . scripts/bootstrap.sh [extra]   (extra: "test" installs the test tools too)
set -euo pipefail
extra="${1:-}"
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "callcenter: please install these Debian packages (as root): $*" >&2
        return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}
if [ ! -x .venv/bin/python ]; then
    echo "callcenter: creating .venv" >&2
    if ! python3 -m venv .venv 2>/dev/null; then
        rm -rf .venv
        apt_install python3-venv
        python3 -m venv .venv
    fi
fi
spec="."
[ -n "$extra" ] && spec=".[$extra]"
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extra:-base}"
if [ ! -f "$stamp" ]; then
    echo "callcenter: installing Python packages into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"
    touch "$stamp"
fi
