#!/usr/bin/env bash
# SIPp callers through the demo IVR into a queue on the real sandboxed Asterisk.
# Usage: bench/ivr_sipp.sh [--rate 20] [--seconds 120] [--hold-ms 12000]   (needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/ivr_sipp.py "$@"
