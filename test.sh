#!/usr/bin/env bash
# Test everything: installs what the tests need (SIPp, debootstrap, PostgreSQL server, the
# sandboxed Asterisk) and runs the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/bootstrap.sh test
need=()
command -v sipp >/dev/null || need+=(sip-tester)
command -v debootstrap >/dev/null || need+=(debootstrap)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v ffmpeg >/dev/null || need+=(ffmpeg)  # pydub reads recordings (mp3, ogg, ...) with it
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
.venv/bin/ruff check .
# The sandboxed Asterisk is installed once and shared by every test instance.
.venv/bin/callcenter asterisk install
exec .venv/bin/pytest -q "$@"
