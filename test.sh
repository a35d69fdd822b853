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
# The tests run in parallel (pytest-xdist): the telephony tests mostly wait on real prompts,
# rings and talk, so three workers per core keep the cores busy (on 2 cores, 2026-12-08:
# the whole suite in about 8.5 min with 6 workers); CALLCENTER_TEST_WORKERS sets
# another number, and a later -n in the arguments wins (-n 0: one process). Each test goes
# to the next free worker; tests marked with the same xdist_group (sharing something made
# once per module) go to one worker. The ten slowest tests are listed at the end.
workers="${CALLCENTER_TEST_WORKERS:-$(( $(nproc) * 3 ))}"
exec .venv/bin/pytest -q -n "$workers" --dist loadgroup --durations=10 "$@"
