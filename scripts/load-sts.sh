#!/usr/bin/env bash
# STS load run on loopback: wrk against `rolegate dev` (release build) and against
# moto_server (PyPI moto[server], an STS emulator), with the same boto3-made requests:
# GetCallerIdentity and AssumeRole (SigV4-signed with the dev IAM user's keys) and
# AssumeRoleWithWebIdentity (unsigned, an RS256 ID token of a throw-away local issuer).
#
#   scripts/load-sts.sh
#   LOAD_TARGETS=rolegate LOAD_DATABASE=postgres scripts/load-sts.sh
#
# Rolegate runs on SQLite (`rolegate dev`, the default) or on PostgreSQL
# (LOAD_DATABASE=postgres): `rolegate dev` seeds its SQLite file as usual, then a
# uniquely named database (rolegate_load_*) is created on LOAD_POSTGRES_URL, migrated
# (`rolegate migrate`), filled with the rows `dev` seeded (scripts/load/
# copy_to_postgres.py) and served by `rolegate serve` with dev's master key and the
# in-memory cache; the database is dropped on exit.
#
# Settings (environment):
#   LOAD_DURATION     seconds per wrk run (default 5, at most 10)
#   LOAD_THREADS      wrk threads (default 1)
#   LOAD_CONNECTIONS  wrk connections (default 32)
#   LOAD_TARGETS      "rolegate moto" (default), or one of them
#   LOAD_DATABASE     "sqlite" (default) or "postgres": Rolegate's database
#   LOAD_POSTGRES_URL the PostgreSQL server for LOAD_DATABASE=postgres, as a user
#                     allowed to create databases (default
#                     postgres://postgres@127.0.0.1:5432)
#   ROLEGATE_BIN      use this binary instead of `cargo build --release`
#   LOAD_OUT          where wrk outputs, server logs and the table go
#                     (default target/load-sts)
#
# Everything is bounded: every wrk run stops after LOAD_DURATION seconds, every
# server is started under `timeout` and killed on exit, and only 127.0.0.1 is used.
# Installs wrk (Debian) and scripts/load/requirements.txt into .venv when missing.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${LOAD_DURATION:-5}
THREADS=${LOAD_THREADS:-1}
CONNECTIONS=${LOAD_CONNECTIONS:-32}
TARGETS=${LOAD_TARGETS:-rolegate moto}
DATABASE=${LOAD_DATABASE:-sqlite}
POSTGRES_URL=${LOAD_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
OUT=${LOAD_OUT:-$ROOT/target/load-sts}
SERVER_LIFETIME=600

log() { echo "load-sts: $*" >&2; }
die() { log "$*"; exit 1; }

[[ $DURATION =~ ^[0-9]+$ ]] && ((DURATION >= 1 && DURATION <= 10)) ||
  die "LOAD_DURATION must be 1..10 seconds"
[[ $THREADS =~ ^[0-9]+$ && $CONNECTIONS =~ ^[0-9]+$ ]] && ((THREADS >= 1 && CONNECTIONS >= THREADS)) ||
  die "LOAD_THREADS and LOAD_CONNECTIONS must be positive, connections >= threads"
[[ $DATABASE == sqlite || $DATABASE == postgres ]] ||
  die "LOAD_DATABASE must be sqlite or postgres"
if [ "$DATABASE" = postgres ]; then
  command -v psql >/dev/null || die "LOAD_DATABASE=postgres needs psql"
  psql "$POSTGRES_URL/postgres" -qAtc 'SELECT 1' >/dev/null ||
    die "cannot reach PostgreSQL at $POSTGRES_URL"
fi

# --- tools -----------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import boto3, moto, cryptography, flask' 2>/dev/null; then
  log "installing boto3 and moto[server] into .venv"
  .venv/bin/pip install -q --disable-pip-version-check \
    -r tests/peers/requirements.txt -r scripts/load/requirements.txt
fi
PY=$ROOT/.venv/bin/python

if [ -n "${ROLEGATE_BIN:-}" ]; then
  BIN=$ROLEGATE_BIN
else
  log "cargo build --release"
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/rolegate
fi
[ -x "$BIN" ] || die "no rolegate binary at $BIN"

# --- bookkeeping -----------------------------------------------------------------
WORK=$(mktemp -d)
PIDS=()
LOAD_DB=
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$LOAD_DB" ]; then
    psql "$POSTGRES_URL/postgres" -qc "DROP DATABASE IF EXISTS $LOAD_DB WITH (FORCE)" ||
      log "could not drop database $LOAD_DB"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT"
rm -f "$OUT"/*.wrk.txt "$OUT"/*.log
ROWS=$OUT/rows.tsv
: >"$ROWS"

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for URL PID NAME: until URL answers (any HTTP status), the process is up.
wait_for() {
  local i
  for ((i = 0; i < 300; i++)); do
    if curl -s -o /dev/null --max-time 1 "$1"; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || die "$3 exited during start-up (see $OUT/$3.log)"
    sleep 0.1
  done
  die "$3 did not answer $1 within 30 s (see $OUT/$3.log)"
}

# stop_last: stops the server started last.
stop_last() {
  kill -TERM "${PIDS[-1]}" 2>/dev/null || true
  wait "${PIDS[-1]}" 2>/dev/null || true
  unset 'PIDS[-1]'
}

# serve_postgres PORT DATA_DIR: `rolegate serve` on a new database holding what
# `rolegate dev` seeded into DATA_DIR.
serve_postgres() {
  local port=$1 data=$2 url
  LOAD_DB=rolegate_load_$$_$(date +%s)
  url=$POSTGRES_URL/$LOAD_DB
  log "PostgreSQL database $LOAD_DB: migrate, copy the dev seed, serve"
  psql "$POSTGRES_URL/postgres" -qc "CREATE DATABASE $LOAD_DB" >&2
  ROLEGATE_DATABASE__URL=$url "$BIN" migrate >&2
  "$PY" scripts/load/copy_to_postgres.py "$data/rolegate.db" |
    psql "$url" -q -v ON_ERROR_STOP=1 >/dev/null
  ROLEGATE_DATABASE__URL=$url ROLEGATE_SECRETS__MASTER_KEY=$(cat "$data/master.key") \
    ROLEGATE_SERVER__LISTEN=127.0.0.1:$port ROLEGATE_LOG__FILTER=info,sqlx=warn \
    timeout "$SERVER_LIFETIME" "$BIN" serve >"$OUT/rolegate.log" 2>&1 &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$port/healthz" "$!" rolegate
}

# load TARGET OPERATION URL: one wrk run with the captured request of OPERATION.
load() {
  local target=$1 op=$2 url=$3 script=$WORK/$1/$2.lua raw=$OUT/$1-$2.wrk.txt
  [ -f "$script" ] || return 0
  log "$target $op: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
  timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s \
    --latency -s "$script" "$url" >"$raw" 2>&1 || die "wrk failed, see $raw"
  local result
  result=$(grep '^RESULT ' "$raw" | tail -1) || die "no result from wrk, see $raw"
  # RESULT requests req/s p50_ms p99_ms mean_ms non2xx socket_errors
  read -r _ requests rps p50 p99 mean non2xx socket <<<"$result"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$op" "$rps" "$p50" "$p99" "$requests" \
    "$non2xx" "$socket" >>"$ROWS"
}

OPERATIONS=(GetCallerIdentity AssumeRole AssumeRoleWithWebIdentity)
ROLE_ARN=arn:aws:iam::123456789012:role/DemoWorkload
WEB_ROLE=DemoWebIdentity
WEB_ROLE_ARN=arn:aws:iam::123456789012:role/$WEB_ROLE
AUDIENCE=rolegate-load

# The local OIDC issuer: its token is used against both targets (moto accepts any).
OIDC_PORT=$(free_port)
timeout "$SERVER_LIFETIME" "$PY" scripts/load/oidc_issuer.py --port "$OIDC_PORT" \
  --token-out "$WORK/web-identity.jwt" --audience "$AUDIENCE" --lifetime "$SERVER_LIFETIME" \
  >"$OUT/oidc-issuer.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$OIDC_PORT/jwks.json" "$!" oidc-issuer

# Keys for signing: the dev IAM user's (moto accepts any keys, so it gets the same).
ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

for target in $TARGETS; do
  mkdir -p "$WORK/$target"
  port=$(free_port)
  url=http://127.0.0.1:$port
  case $target in
    rolegate)
      data=$WORK/rolegate-data
      dev_log=rolegate
      [ "$DATABASE" = postgres ] && dev_log=rolegate-dev
      timeout "$SERVER_LIFETIME" "$BIN" dev --listen "127.0.0.1:$port" --data-dir "$data" \
        >"$OUT/$dev_log.log" 2>&1 &
      PIDS+=($!)
      wait_for "$url/healthz" "$!" "$dev_log"
      "$PY" scripts/load/register_oidc.py "$data/rolegate.db" "http://127.0.0.1:$OIDC_PORT" \
        "$AUDIENCE" "$WEB_ROLE" >&2
      if [ "$DATABASE" = postgres ]; then
        stop_last
        serve_postgres "$port" "$data"
      fi
      ACCESS_KEY_ID=$(sed -n 's/^aws_access_key_id *= *//p' "$data/aws-credentials")
      SECRET_ACCESS_KEY=$(sed -n 's/^aws_secret_access_key *= *//p' "$data/aws-credentials")
      ;;
    moto)
      timeout "$SERVER_LIFETIME" "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" \
        >"$OUT/moto.log" 2>&1 &
      PIDS+=($!)
      wait_for "$url/moto-api/" "$!" moto
      ;;
    *) die "unknown target $target (rolegate or moto)" ;;
  esac
  log "$target on $url: one boto3 call per operation, captured for wrk"
  "$PY" scripts/load/make_requests.py --endpoint "$url" --out "$WORK/$target" \
    --access-key-id "$ACCESS_KEY_ID" --secret-access-key "$SECRET_ACCESS_KEY" \
    --role-arn "$ROLE_ARN" --web-role-arn "$WEB_ROLE_ARN" \
    --web-token-file "$WORK/web-identity.jwt" >&2
  for op in "${OPERATIONS[@]}"; do
    load "$target" "$op" "$url/"
  done
  # Stop this target before the next one so they never share the CPUs.
  stop_last
done

{
  echo "STS load run $(date -u +%Y-%m-%dT%H:%M:%SZ): $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
  echo "rolegate on $DATABASE; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s on 127.0.0.1, same machine; one captured boto3 request replayed per run"
  echo
  printf '%-9s %-26s %10s %9s %9s %9s %8s %7s\n' target operation req/s p50_ms p99_ms requests non-2xx errors
  while IFS=$'\t' read -r target op rps p50 p99 requests non2xx socket; do
    printf '%-9s %-26s %10.0f %9.2f %9.2f %9s %8s %7s\n' "$target" "$op" "$rps" "$p50" "$p99" \
      "$requests" "$non2xx" "$socket"
  done <"$ROWS"
} | tee "$OUT/table.txt"
log "raw wrk output and server logs: $OUT"
