#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need,
# checks formatting and lints, builds the tests once, runs them, and runs the
# Rego policy tests through the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

# A build cache outside the clone, so a fresh clone reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shieldops/target}"
export CARGO_TERM_COLOR=never

scripts/install-test-deps.sh
# Tools installed with pip (emulators, CLIs) live in Python's scripts directory.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH

echo "== cargo fmt --check"
cargo fmt --check

echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings

echo "== build tests"
cargo build --bins

echo "== policy tests (Rego, through the real binary)"
"$CARGO_TARGET_DIR/debug/shieldops" policy test policies/
echo "== policy tests (Rego, in OPA, the reference engine)"
"${OPA_VENV:-$HOME/.cache/shieldops/opa-venv}/bin/python" scripts/opa_test.py policies/
"$CARGO_TARGET_DIR/debug/shieldops" playbook validate playbooks/
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-run
  echo "== run tests"
  cargo nextest run --no-fail-fast --failure-output final
else
  cargo test --no-run
  echo "== run tests"
  cargo test --no-fail-fast
fi

