#!/usr/bin/env bash
# The run command: installs the SAML build dependencies when they are missing (samael
# links libxmlsec1 and libxml2 and generates bindings with libclang), then runs
#   cargo run --release -- dev "$@"
# Needs: a Rust toolchain; on a fresh Debian machine, root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages samael's xmlsec feature needs at build time.
SAML_BUILD_DEPS=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev)

missing=()
for pkg in "${SAML_BUILD_DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing build dependencies: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

exec cargo run --release -- dev "$@"
