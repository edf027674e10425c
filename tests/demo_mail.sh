#!/usr/bin/env bash
# ctest wrapper: the demo over the real mail servers; skipped (77) with SQLPOST_SKIP_MAIL=1.
set -euo pipefail
if [ "${SQLPOST_SKIP_MAIL:-0}" = "1" ]; then
  echo "SQLPOST_SKIP_MAIL=1: demo --mail skipped"
  exit 77
fi
exec bash "$(dirname "${BASH_SOURCE[0]}")/../tools/demo.sh" --mail "$1"
