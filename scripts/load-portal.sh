#!/usr/bin/env bash
# Portal load run on loopback: wrk against `rolegate dev` (release build) with a
# signed-in directory session (alice): the accounts page `GET /start`, whose
# entitlements are computed from the session's groups at every view, and "Access keys"
# `POST /start/credentials`, which mints a role session and audits it.
#
#   scripts/load-portal.sh
#
# Settings (environment):
#   LOAD_DURATION     seconds per wrk run (default 8, at most 10)
#   LOAD_THREADS      wrk threads (default 2)
#   LOAD_CONNECTIONS  wrk connections (default 16)
#   ROLEGATE_BIN      use this binary instead of `cargo build --release`
#   LOAD_OUT          where wrk outputs, the server log and the table go
#                     (default target/load-portal)
#
# Bounded: each wrk run stops after LOAD_DURATION seconds, the server runs under
# `timeout` and is killed on exit, and only 127.0.0.1 is used. Installs wrk (Debian).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${LOAD_DURATION:-8}
THREADS=${LOAD_THREADS:-2}
CONNECTIONS=${LOAD_CONNECTIONS:-16}
OUT=${LOAD_OUT:-$ROOT/target/load-portal}
SERVER_LIFETIME=300

log() { echo "load-portal: $*" >&2; }
die() { log "$*"; exit 1; }

[[ $DURATION =~ ^[0-9]+$ ]] && ((DURATION >= 1 && DURATION <= 10)) ||
  die "LOAD_DURATION must be 1..10 seconds"
[[ $THREADS =~ ^[0-9]+$ && $CONNECTIONS =~ ^[0-9]+$ ]] && ((THREADS >= 1 && CONNECTIONS >= THREADS)) ||
  die "LOAD_THREADS and LOAD_CONNECTIONS must be positive, connections >= threads"

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ -n "${ROLEGATE_BIN:-}" ]; then
  BIN=$ROLEGATE_BIN
else
  log "cargo build --release"
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/rolegate
fi
[ -x "$BIN" ] || die "no rolegate binary at $BIN"

WORK=$(mktemp -d)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then
    kill -TERM "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"
rm -f "$OUT"/*.wrk.txt

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
timeout "$SERVER_LIFETIME" "$BIN" dev --listen "127.0.0.1:$port" --data-dir "$WORK/data" \
  >"$OUT/rolegate.log" 2>&1 &
SERVER=$!
for ((i = 0; i < 300; i++)); do
  curl -s -o /dev/null --max-time 1 "$url/healthz" && break
  kill -0 "$SERVER" 2>/dev/null || die "rolegate exited during start-up (see $OUT/rolegate.log)"
  sleep 0.1
done

# Sign in as alice the way a browser does: the sign-in form's CSRF token, then the form.
jar=$WORK/cookies
form_csrf=$(curl -s -c "$jar" "$url/signin" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
[ -n "$form_csrf" ] || die "no CSRF token on the sign-in page"
status=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" \
  --data-urlencode "csrf=$form_csrf" --data-urlencode "return_to=/start" \
  --data-urlencode "username=alice" --data-urlencode "password=alice-demo-password" \
  "$url/signin/directory")
[ "$status" = 303 ] || die "sign-in answered $status, expected 303"
session=$(awk '$6 == "rg_session" { print $7 }' "$jar")
[ -n "$session" ] || die "no session cookie after sign-in"
export PORTAL_COOKIE="rg_session=$session"
start_page=$(curl -s -b "$PORTAL_COOKIE" "$url/start")
page_csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' <<<"$start_page" | head -1)
[ -n "$page_csrf" ] || die "no CSRF token on /start: not signed in?"

ROWS=$WORK/rows.tsv
: >"$ROWS"
run() {
  local name=$1 raw
  raw=$OUT/$(tr -c 'A-Za-z0-9\n' '-' <<<"$1").wrk.txt
  log "$name: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
  timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s \
    --latency -s scripts/load/portal.lua "$url" >"$raw" 2>&1 || die "wrk failed, see $raw"
  local result
  result=$(grep '^RESULT ' "$raw" | tail -1) || die "no result from wrk, see $raw"
  read -r _ requests rps p50 p99 mean non2xx socket <<<"$result"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rps" "$p50" "$p99" "$requests" "$non2xx" \
    "$socket" >>"$ROWS"
}

PORTAL_METHOD=GET PORTAL_PATH=/start PORTAL_BODY= run "GET /start"
PORTAL_METHOD=POST PORTAL_PATH=/start/credentials \
  PORTAL_BODY="csrf=$page_csrf&account=123456789012&role=Developer" run "POST /start/credentials"

{
  echo "Portal load run $(date -u +%Y-%m-%dT%H:%M:%SZ): $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s on 127.0.0.1, same machine; signed in as alice (groups admins and developers)"
  echo
  printf '%-24s %10s %9s %9s %9s %8s %7s\n' request req/s p50_ms p99_ms requests non-2xx errors
  while IFS=$'\t' read -r name rps p50 p99 requests non2xx socket; do
    printf '%-24s %10.0f %9.2f %9.2f %9s %8s %7s\n' "$name" "$rps" "$p50" "$p99" "$requests" \
      "$non2xx" "$socket"
  done <"$ROWS"
} | tee "$OUT/table.txt"
