#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver (for the browser test of report.html) when
# they are missing. Needs root and apt; elsewhere it says so and leaves the machine alone.
set -euo pipefail
if [ -x /usr/bin/chromium ] && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium not found and cannot install it here (needs root and apt-get);" \
         "tests/reports/test_report_html.py will skip its browser test" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
fi
/usr/bin/chromium --version
