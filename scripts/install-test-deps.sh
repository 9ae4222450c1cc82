#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, idempotently.
# Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

need_apt=()
command -v dpkg >/dev/null 2>&1 || need_apt+=(dpkg)

if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}"
  else
    echo "missing packages: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
fi
