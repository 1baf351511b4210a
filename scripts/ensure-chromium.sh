#!/usr/bin/env bash
# Makes sure a headless Chromium is at /usr/bin/chromium for the web UI test
# (test/roles/client/web): installs Debian's chromium package when it is missing.
# Never fails the build: when it cannot install, it says why and exits 0, and the
# UI test then skips with that reason.
set -u
if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "chromium: /usr/bin/chromium is missing and this is not root, so it cannot be installed (apt-get install chromium); the web UI test will skip"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: /usr/bin/chromium is missing and there is no apt-get here; the web UI test will skip"
  exit 0
fi
echo "chromium: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >/dev/null 2>&1; then
  echo "chromium: apt-get update failed (no network or no package sources?); the web UI test will skip"
  exit 0
fi
if ! apt-get install -y -qq --no-install-recommends chromium >/tmp/ensure-chromium.log 2>&1; then
  echo "chromium: apt-get install chromium failed (see /tmp/ensure-chromium.log); the web UI test will skip"
  exit 0
fi
if [ -x /usr/bin/chromium ]; then
  echo "chromium: installed $(/usr/bin/chromium --version 2>/dev/null)"
else
  echo "chromium: the package installed but /usr/bin/chromium is still missing; the web UI test will skip"
fi
exit 0
