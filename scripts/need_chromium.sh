#!/bin/sh
# Debian's headless Chromium and its driver, for nbs/tests/test_docs.py (make test): installed when missing, as root with
# apt-get; elsewhere the docs test is skipped and says why. Never fails the caller.
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing Debian's chromium and chromium-driver (for the docs test)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null && exit 0
  echo "== chromium could not be installed: the docs test will be skipped"
else
  echo "== no chromium here (not root, or no apt-get): the docs test will be skipped"
fi
exit 0
