#!/usr/bin/env bash
# Run the call center: installs what is missing (virtualenv, packages, the sandboxed Asterisk),
# migrates the SQLite database, starts Asterisk and the service with the demo configuration.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/bootstrap.sh
exec .venv/bin/callcenter run "$@"
