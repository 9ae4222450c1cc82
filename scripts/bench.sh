#!/usr/bin/env bash
# Runs every bench in a short mode and prints one line per goal: what,
# measured, goal, met or not. With --readme, also rewrites the table between
# the `bench:goals` markers in README.md's Performance section.
#
#   scripts/bench.sh                 every bench
#   scripts/bench.sh eventlog policy only these
#   scripts/bench.sh --readme        every bench, then update the README
#
# Benches print their own goals as `goal: WHAT | MEASURED | GOAL | verdict`
# lines (benches/support/goal.rs); the goals measured by criterion alone are
# read from criterion's estimates here (CRITERION_GOALS below). Figures are
# only as steady as the machine: run it on an idle one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shieldops/target}"
export CARGO_TERM_COLOR=never

readme=0
benches=()
for arg in "$@"; do
  case "$arg" in
    --readme) readme=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) benches+=("$arg") ;;
  esac
done
if [ ${#benches[@]} -eq 0 ]; then
  benches=(eventlog console policy render cost learning remote notify linux aws kube_fleet compliance vulndb prometheus)
fi

# Some benches start the same servers the tests do (sshd, moto, the test API server).
scripts/install-test-deps.sh >/dev/null
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo bench --no-run >/dev/null
touch "$out/.start"

# Criterion ids (a Python regex over the full id) whose mean has a goal:
# what | id pattern | worst-of | limit | unit
CRITERION_GOALS=$(cat <<'EOF'
render: frame at 200x50, slowest pane or view|^frame_200x50/|max|2|ms
render: key press to frame, 50k resources|^key_to_frame_fleet_50k$|max|30|ms
cost: allocation of 50,000 pods on 2,500 nodes|^allocate 50,000 pods|max|200|ms
learning: one cycle over 1,000,000 events|^learning cycle from the event log|max|2000|ms
EOF
)

for bench in "${benches[@]}"; do
  echo "== $bench" >&2
  # `--quick` makes criterion stop once its estimate is steady; benches with
  # their own main ignore it.
  if ! cargo bench --bench "$bench" -- --quick >"$out/$bench.log" 2>&1; then
    echo "goal: $bench bench | failed (see below) | runs | NOT MET" >>"$out/$bench.log"
    tail -n 20 "$out/$bench.log" >&2
  fi
done

printf '%s\n' "$CRITERION_GOALS" >"$out/criterion-goals"
args=(--logs "$out" --criterion "$CARGO_TARGET_DIR/criterion" --criterion-goals "$out/criterion-goals")
[ "$readme" = 1 ] && args+=(--readme README.md)
python3 scripts/bench_goals.py "${args[@]}" "${benches[@]}"
