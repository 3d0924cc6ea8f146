#!/usr/bin/env bash
# The fuzz targets of fuzz/ (cargo-fuzz, libFuzzer, nightly toolchain).
#   scripts/fuzz.sh list                      # the targets (`cargo fuzz list`)
#   scripts/fuzz.sh smoke [SECONDS]           # every target, SECONDS each (default 20), from its seeds
#   scripts/fuzz.sh run TARGET [SECONDS] [libFuzzer args...]
#                                             # a long run (default 1800 s), keeping its corpus in
#                                             # fuzz/corpus/TARGET (git-ignored)
# Seeds of TARGET: fuzz/seeds/TARGET/ (small, committed) and the directories that
# fuzz/shared-seeds.txt names for it (e.g. ../shared/corpora/aws-managed-policies).
# A new target is a file in fuzz/fuzz_targets/ and a [[bin]] in fuzz/Cargo.toml; it
# joins `smoke` without editing this script.
# FUZZ_SANITIZER (default: address) is passed to `cargo fuzz --sanitizer`.
set -euo pipefail
cd "$(dirname "$0")/.."

SANITIZER="${FUZZ_SANITIZER:-address}"
# Each input must finish within TIMEOUT seconds and RSS_MB of memory, or it is a finding.
TIMEOUT="${FUZZ_TIMEOUT:-30}"
RSS_MB="${FUZZ_RSS_MB:-2048}"

fuzz() { (cd fuzz && cargo +nightly fuzz "$@"); }

# The seed directories of target $1, relative to fuzz/ (where cargo fuzz runs).
seeds() {
  local target="$1" name dir
  if [ -d "fuzz/seeds/$target" ]; then echo "seeds/$target"; fi
  while read -r name dir; do
    case "$name" in ''|'#'*) continue ;; esac
    [ "$name" = "$target" ] || continue
    if [ -d "$dir" ]; then
      echo "../$dir"
    else
      echo "note: seed directory $dir of $target not found, skipped" >&2
    fi
  done < fuzz/shared-seeds.txt
}

# Runs target $1 with corpus directory $2 (relative to fuzz/) for $3 seconds.
run_target() {
  local target="$1" corpus="$2" seconds="$3"
  shift 3
  mkdir -p "fuzz/$corpus"
  # shellcheck disable=SC2046
  fuzz run --sanitizer "$SANITIZER" "$target" "$corpus" $(seeds "$target") -- \
    -max_total_time="$seconds" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
    -print_final_stats=1 "$@"
}

case "${1:-}" in
  list)
    fuzz list
    ;;
  smoke)
    seconds="${2:-20}"
    fuzz build --sanitizer "$SANITIZER"
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/rolegate-fuzz-smoke.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    for target in $(fuzz list); do
      printf '\n==> fuzz smoke: %s (%ss)\n' "$target" "$seconds"
      # A scratch corpus: the smoke never grows the repository.
      run_target "$target" "$(realpath --relative-to=fuzz "$tmp")/$target" "$seconds"
    done
    ;;
  run)
    target="${2:?usage: scripts/fuzz.sh run TARGET [SECONDS] [libFuzzer args...]}"
    seconds="${3:-1800}"
    shift; shift; [ $# -gt 0 ] && shift
    run_target "$target" "corpus/$target" "$seconds" "$@"
    ;;
  *)
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
