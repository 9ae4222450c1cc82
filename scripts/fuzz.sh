#!/usr/bin/env bash
# The fuzzing campaign (not part of CI): runs every target in fuzz/ with
# libFuzzer through cargo-fuzz on the nightly toolchain for SECONDS each
# (default 300), seeded from the project's own files, and prints one line per
# target: executions, and crashes (inputs saved under fuzz/artifacts/TARGET/).
#
#   scripts/fuzz.sh            every target, 300 s each
#   scripts/fuzz.sh 60 when_expr config_toml
#   FUZZ_RUNS=1000000 scripts/fuzz.sh 3600   each target until 1M executions (at most an hour)
#   FUZZ_MAX_LEN=2048 scripts/fuzz.sh 900 rego_bundle   inputs cut to 2 KB
#
# Needs: `rustup toolchain install nightly` and `cargo install cargo-fuzz`.
# Built without a sanitizer by default (FUZZ_SANITIZER=address to add one):
# the targets are safe Rust, where a bug shows as a panic, a hang or runaway
# memory, all of which libFuzzer catches; under the address sanitizer the AWS
# SDK crates the library links need more memory to build than the 2-core
# development machine has.
# Every crash found becomes a regression test next to the code it broke.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(ws_frames alertmanager playbook_yaml when_expr config_toml vuln_feeds stored_record rego_bundle)
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/shieldops/fuzz-target}"
# The fuzz crate is its own workspace; it resolves the same versions as the project.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

seeds=fuzz/corpus
mkdir -p "$seeds"
seed() { # seed TARGET FILE...
  local dir="$seeds/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/$(basename "$f")"; done
  return 0
}
seed playbook_yaml playbooks/*.yaml
seed rego_bundle policies/*.rego policies/compliance/*.rego
seed vuln_feeds tests/vulndb_fixtures/*
mkdir -p "$seeds/when_expr" "$seeds/ws_frames" "$seeds/alertmanager" "$seeds/config_toml" "$seeds/stored_record"
n=0
grep -h 'when:' playbooks/*.yaml | sed 's/^ *- *when: *//; s/^ *when: *//; s/^"//; s/"$//' | while IFS= read -r line; do
  n=$((n + 1)); printf '%s' "$line" >"$seeds/when_expr/playbook-$n"
done
printf '%s' '{"type":"hello","version":1,"after_seq":41}' >"$seeds/ws_frames/hello"
printf '%s' '{"type":"command","id":7,"command":{"command":"approve","remediation":3,"comment":"ok"}}' >"$seeds/ws_frames/approve"
printf '%s' '{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"KubePodCrashLooping","namespace":"shop","pod":"web-1","severity":"critical"},"annotations":{"summary":"crash loop"},"startsAt":"2026-06-03T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"a1"}]}' >"$seeds/alertmanager/firing"
printf '%s\n' '[runtime]' 'read_only = true' '[notify.channels.audit]' 'type = "webhook"' 'url = "https://audit.example/hook"' 'secret = "0123456789abcdef0123"' '[store]' 'cache_mb = 32' >"$seeds/config_toml/basic"
printf '%s' '0000000000000000000000000000000000000000000000000000000000000000{"v":1,"seq":1,"at":"2026-01-02T03:04:05.678Z","actor":"agent:test","kind":"resource_gone","resource":"k8s/x/pod/y","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000"}' >"$seeds/stored_record/one"

printf '%-16s %14s %8s %s\n' target executions crashes note
for t in "${targets[@]}"; do
  log=$(mktemp)
  # -rss_limit_mb guards against a target eating the machine; a timeout is a crash too.
  runs=()
  [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
  # Inputs longer than this are cut (the policy seeds are whole files, and a
  # Rego input of a few KB already reaches every construct).
  [ -n "${FUZZ_MAX_LEN:-}" ] && runs+=(-max_len="$FUZZ_MAX_LEN")
  if cargo +nightly fuzz run --sanitizer "${FUZZ_SANITIZER:-none}" "$t" "$seeds/$t" -- \
      -max_total_time="$seconds" "${runs[@]}" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
      >"$log" 2>&1; then
    note=ok
  else
    note="stopped: see fuzz/artifacts/$t/"
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
  crashes=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | wc -l)
  printf '%-16s %14s %8s %s\n' "$t" "${execs:-?}" "$crashes" "$note"
  rm -f "$log"
done
