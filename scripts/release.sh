#!/usr/bin/env bash
# Builds the release artefacts into dist/ (or --out DIR):
#   shieldops-VERSION-x86_64-linux-gnu.tar.gz  the stripped binary, man pages,
#       shell completions, the systemd unit, a commented config, and the
#       default policies, playbooks and themes as files to edit
#   shieldops_VERSION-1_amd64.deb               the same, installed (cargo-deb)
#   shieldops-VERSION.cdx.json                  CycloneDX SBOM of every crate compiled in
#   SHA256SUMS
#
#   scripts/release.sh                  the full release from a clean checkout:
#                                       an optimised build linked against glibc
#                                       2.31 symbols (cargo-zigbuild), so it runs
#                                       on any x86_64 Linux with glibc >= 2.31
#   scripts/release.sh --profile dev --deb-only [--binary PATH]
#                                       only the .deb, from the debug build (or
#                                       the given binary): what the CI test installs
#   --allow-dirty                       build from a checkout with uncommitted changes
#
# Tools it needs and lacks are installed at pinned versions (cargo-deb,
# cargo-cyclonedx with cargo; cargo-zigbuild and zig with pip).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_CYCLONEDX_VERSION=0.5.9
CARGO_ZIGBUILD_VERSION=0.24.0
ZIG_VERSION=0.17.0
# The oldest glibc the binary must run on (Debian 11, Ubuntu 20.04).
GLIBC_FLOOR=2.31
TARGET=x86_64-unknown-linux-gnu

profile=release
deb_only=false
allow_dirty=false
binary=""
out=dist
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --deb-only) deb_only=true; shift ;;
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --allow-dirty) allow_dirty=true; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "release.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release|dev) ;;
  *) echo "release.sh: --profile is release or dev, not $profile" >&2; exit 2 ;;
esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shieldops/target}"
export CARGO_TERM_COLOR=never
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
stage=dist/.stage   # fixed: [package.metadata.deb] assets point here
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# --- where the sources come from: the commit and its time stamp the build.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && [ "$(git rev-parse --show-toplevel)" = "$PWD" ]; then
  if [ "$profile" = release ] && ! $allow_dirty && [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "release.sh: the checkout has uncommitted changes (commit them, or --allow-dirty)" >&2
    exit 1
  fi
  # Reproducible: the build date is the commit's, not today's.
  export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
else
  echo "release.sh: not a git checkout; set SHIELDOPS_BUILD_COMMIT to name the commit" >&2
  export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(date +%s)}"
fi

# need_cargo_tool SUBCOMMAND CRATE VERSION: installs the crate at that version unless present.
need_cargo_tool() {
  if ! cargo "$1" --version 2>/dev/null | grep -qF "$3"; then
    echo "== installing $2 $3"
    cargo install --locked "$2" --version "$3"
  fi
}

# --- build
if [ -n "$binary" ]; then
  built="$binary"
elif [ "$profile" = dev ]; then
  echo "== cargo build (dev)"
  cargo build --locked --bin shieldops
  built="$CARGO_TARGET_DIR/debug/shieldops"
else
  # Rust links against the build machine's glibc symbol versions (2.34+ on
  # current distributions); zig's linker targets an older glibc's symbols.
  py_scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  export PATH="$py_scripts:$PATH"
  if ! cargo-zigbuild --version 2>/dev/null | grep -qF "$CARGO_ZIGBUILD_VERSION" \
     || [ "$(python3 -m ziglang version 2>/dev/null)" != "$ZIG_VERSION" ]; then
    echo "== installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION and zig $ZIG_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check \
      "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" "ziglang==$ZIG_VERSION"
  fi
  echo "== cargo zigbuild --release --target $TARGET.$GLIBC_FLOOR"
  start=$(date +%s)
  cargo zigbuild --locked --release --bin shieldops --target "$TARGET.$GLIBC_FLOOR"
  echo "build took $(( $(date +%s) - start )) s"
  built="$CARGO_TARGET_DIR/$TARGET/release/shieldops"
fi
[ -x "$built" ] || { echo "release.sh: no binary at $built" >&2; exit 1; }

# --- the glibc it needs
glibc="$(objdump -T "$built" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
echo "newest glibc symbol version required: GLIBC_$glibc (floor: $GLIBC_FLOOR)"
if [ "$profile" = release ] && [ "$(printf '%s\n%s\n' "$glibc" "$GLIBC_FLOOR" | sort -V | tail -n 1)" != "$GLIBC_FLOOR" ]; then
  echo "release.sh: the binary needs glibc $glibc, newer than $GLIBC_FLOOR" >&2
  exit 1
fi

# --- stage: what both the tarball and the .deb hold
rm -rf "$stage"
mkdir -p "$stage"/{bin,man/man1,completions,systemd,etc,share}
strip --strip-all -o "$stage/bin/shieldops" "$built"
echo "binary: $(stat -c %s "$built") bytes unstripped, $(stat -c %s "$stage/bin/shieldops") bytes stripped"
bin="$stage/bin/shieldops"
"$bin" man --out "$stage/man/man1" >/dev/null
# -n: no name or time stamp in the gzip header (reproducible).
gzip -9n "$stage"/man/man1/*.1
"$bin" completions bash >"$stage/completions/shieldops.bash"
"$bin" completions zsh >"$stage/completions/_shieldops"
"$bin" completions fish >"$stage/completions/shieldops.fish"
cp packaging/shieldops.service "$stage/systemd/"
cp packaging/config.toml "$stage/etc/"
cp -r policies playbooks themes "$stage/share/"
cp README.md "$stage/"

# --- .deb
need_cargo_tool deb cargo-deb "$CARGO_DEB_VERSION"
echo "== cargo deb"
# The binary is the staged, stripped one: nothing to build or strip.
# A dev package (the CI test's) is compressed fast: it is installed and thrown away.
fast=()
[ "$profile" = dev ] && fast=(--fast)
deb="$(cargo deb --no-build --no-strip "${fast[@]}" --output "$out" | tail -n 1)"
echo "$deb"
if $deb_only; then
  exit 0
fi

# --- tarball (reproducible: sorted, fixed owner and time)
name="shieldops-$version-x86_64-linux-gnu"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  --transform "s,^\.stage,$name," -C dist -cf - .stage | gzip -9n >"$out/$name.tar.gz"

# --- SBOM: the crates compiled into the binary for this target (no dev or build dependencies)
need_cargo_tool cyclonedx cargo-cyclonedx "$CARGO_CYCLONEDX_VERSION"
echo "== cargo cyclonedx"
cargo cyclonedx --format json --spec-version 1.5 --target "$TARGET" --no-build-deps \
  --override-filename "shieldops-$version.cdx"
mv "shieldops-$version.cdx.json" "$out/"

# --- checksums
(cd "$out" && sha256sum "$name.tar.gz" "$(basename "$deb")" "shieldops-$version.cdx.json" >SHA256SUMS)
echo "== artefacts in $out"
cat "$out/SHA256SUMS"
