#!/usr/bin/env bash
# The browser test drives Debian's Chromium (no browser download at run time): install
# it if it is missing. The test fails, never skips, without it.
set -euo pipefail
CHROMIUM="${ZKFL_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then echo "need root to apt-get install chromium (or set ZKFL_CHROMIUM)" >&2; exit 1; fi
echo "installing chromium ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
