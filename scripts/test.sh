#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs every check and test.
#   scripts/test.sh            # everything CI runs
#   scripts/test.sh store::    # extra arguments filter the nextest run (and skip the fuzz smoke)
# Needs: a Rust toolchain (and nightly, for the fuzz smoke). Starts the local PostgreSQL and Redis if they are down.
set -euo pipefail
# Every peer is installed below, so a missing one is a failure, never a skip.
export CI="${CI:-true}"
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

ensure_saml_build_deps() {
  # samael (xmlsec feature) links libxmlsec1/libxml2/OpenSSL and runs bindgen (libclang).
  # Installed before any cargo step. The same list is in scripts/dev.sh.
  local pkgs=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev) missing=()
  for pkg in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then return; fi
  log "installing SAML build dependencies: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_saml_idp() {
  # The real SAML IdP peer (tests/it/saml_peer.rs): simplesamlphp under `php -S`, and
  # the xmlsec1 CLI that pysaml2 (the IdP for unsigned / partly signed cases) signs with.
  if [ -d /usr/share/simplesamlphp/www ] && command -v php >/dev/null 2>&1 \
    && php -m 2>/dev/null | grep -qi '^dom$' && command -v xmlsec1 >/dev/null 2>&1; then return; fi
  log "installing simplesamlphp, php and xmlsec1"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    simplesamlphp php8.2-cli php8.2-cgi micro-httpd php8.2-xml php8.2-mbstring php8.2-curl xmlsec1 >/dev/null
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  log "starting PostgreSQL"
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 1; done
  echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1
}

ensure_initdb() {
  # The database fault test (db_faults) makes a private cluster with initdb and pg_ctl.
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then return; fi
  log "installing the PostgreSQL server binaries (initdb, pg_ctl)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  # As root the test runs them as the postgres user (initdb refuses root).
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "initdb needs a postgres user to run as when the tests run as root" >&2; exit 1
  fi
}

ensure_redis() {
  if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
  log "starting Redis"
  if ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
}

ensure_nextest() {
  if cargo nextest --version >/dev/null 2>&1; then return; fi
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
}

ensure_cargo_fuzz() {
  # The fuzz smoke (scripts/fuzz.sh) builds with cargo-fuzz on the nightly toolchain.
  if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "The fuzz smoke needs the nightly Rust toolchain, which is not installed: run 'rustup toolchain install nightly --profile minimal'." >&2
    exit 1
  fi
  if cargo +nightly fuzz --version >/dev/null 2>&1; then return; fi
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
}

ensure_python_peers() {
  # The real AWS clients (awscli, boto3) in a project-local virtualenv.
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv .venv
    }
  fi
  if ! .venv/bin/python -c 'import sys, importlib.metadata as m; reqs=[l.strip().split("==") for l in open("tests/peers/requirements.txt") if "==" in l]; sys.exit(0 if all(m.version(n)==v for n,v in reqs) else 1)' 2>/dev/null; then
    log "installing awscli and boto3 into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -r tests/peers/requirements.txt
  fi
}

ensure_node_peers() {
  # The real OIDC provider (npm oidc-provider) in tests/peers/oidc/node_modules.
  if ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  if [ ! -d tests/peers/oidc/node_modules/oidc-provider ]; then
    log "installing the OIDC provider peer (npm ci)"
    npm ci --prefix tests/peers/oidc --no-audit --no-fund --loglevel=error
  fi
}

ensure_browser() {
  # Headless Chromium and its WebDriver for the browser tests (tests/it/browser.rs).
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return; fi
  log "installing chromium and chromium-driver"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
}

ensure_nginx() {
  # The reverse proxy of config/nginx.conf.example, run by tests/it/nginx.rs with a
  # private prefix and port (openssl makes its self-signed certificate).
  if [ -x /usr/sbin/nginx ] && command -v openssl >/dev/null; then return; fi
  log "installing nginx and openssl"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx openssl >/dev/null
}

ensure_saml_build_deps
ensure_postgres
ensure_initdb
ensure_redis
ensure_nginx
ensure_nextest
ensure_saml_idp
ensure_cargo_fuzz
ensure_python_peers
ensure_node_peers
ensure_browser
if ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then rustup component add clippy rustfmt; fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

log "no import cycles between modules"
python3 scripts/check-module-cycles.py

log "cargo nextest run (SQLite and PostgreSQL)"
cargo nextest run --no-fail-fast "$@"

# A short run of every fuzz target (fuzz/fuzz_targets/) from its seeds; the long runs
# are `scripts/fuzz.sh run TARGET`. Skipped when arguments filter the nextest run.
if [ $# -eq 0 ]; then
  log "fuzz smoke (${FUZZ_SMOKE_SECONDS:-20} s per target)"
  scripts/fuzz.sh smoke "${FUZZ_SMOKE_SECONDS:-20}"
fi
