#!/usr/bin/env bash
# Runs the real AWS CLI v2 against a fresh `rolegate dev`: the sign-in flows of
# `aws sso login` (the default authorization code + PKCE, and --use-device-code),
# then `aws sts get-caller-identity`, `aws sso list-accounts` and `aws sso logout`.
# Not part of CI: the AWS CLI v2 is not on PyPI. Build it from its public source into
# a virtualenv outside this repository, e.g.
#
#   git clone --branch v2 --depth 1 https://github.com/aws/aws-cli /tmp/aws-cli-v2
#   python3 -m venv /tmp/cliv2-venv && /tmp/cliv2-venv/bin/pip install /tmp/aws-cli-v2
#   scripts/check-cli-v2.sh /tmp/cliv2-venv
#
# Everything runs on 127.0.0.1 with a private HOME and AWS config; nothing reaches
# AWS (AWS_EC2_METADATA_DISABLED=true, every endpoint from the config's [services]).
# The browser step is the person's: signing in at the portal and clicking Approve are
# done over HTTP here (a cookie-keeping client, the same forms a browser posts).
set -euo pipefail

venv="${1:?usage: scripts/check-cli-v2.sh VENV (a virtualenv with the AWS CLI v2 installed)}"
aws="$venv/bin/aws"
python="$venv/bin/python"
[ -x "$aws" ] || { echo "no $aws" >&2; exit 2; }
cd "$(dirname "$0")/.."
bin="${ROLEGATE_BIN:-target/debug/rolegate}"
[ -x "$bin" ] || cargo build --quiet --bin rolegate
port="${PORT:-18480}"
base="http://127.0.0.1:$port"
work="$(mktemp -d)"
dev_pid=""
cleanup() {
    [ -n "$dev_pid" ] && kill "$dev_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

export HOME="$work/home" AWS_CONFIG_FILE="$work/home/.aws/config"
export AWS_SHARED_CREDENTIALS_FILE="$work/home/.aws/credentials"
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER="" NO_COLOR=1
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SSO AWS_ENDPOINT_URL_SSO_OIDC AWS_ENDPOINT_URL_STS \
    AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
mkdir -p "$HOME/.aws"

"$bin" dev --listen "127.0.0.1:$port" --data-dir "$work/data" > "$work/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 100); do
    curl -fsS "$base/healthz" > /dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$base/healthz" > /dev/null
echo "== $("$aws" --version)"
echo "== rolegate dev on $base"
grep -i 'AWS CLI v2' "$work/dev.log" || true

start_url="$(curl -sS -o /dev/null -w '%{redirect_url}' -I "$base/start")"
echo "== HEAD $base/start -> $start_url"
# The user's own default profile, pointing at real AWS: it must stay so.
printf '[default]\nregion = eu-west-1\n' > "$AWS_CONFIG_FILE"

# The person's part: sign in at the portal as alice and approve the link the CLI
# printed (an /authorize URL, or a /device URL with the user code). Prints how long
# the CLI took to finish after the approval.
approve() {
    "$python" - "$base" "$1" "$2" "${3:-Successfully logged into}" <<'PY'
import http.cookiejar, re, sys, time, urllib.parse, urllib.request
base, link, log, done_marker = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
jar = http.cookiejar.CookieJar()
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def call(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        r = opener.open(urllib.request.Request(url, data=data))
        return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()
def hidden(body, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), body)
    v = m.group(1) if m else ""
    for a, b in [("&#38;", "&"), ("&amp;", "&"), ("&#43;", "+"), ("&#47;", "/"), ("&#61;", "="), ("&#34;", '"'), ("&#39;", "'")]:
        v = v.replace(a, b)
    return v
status, headers, _ = call(link)
assert status == 303, status
signin = urllib.parse.urljoin(base, headers["Location"])
status, _, body = call(signin)
status, headers, _ = call(base + "/signin/directory", {
    "csrf": hidden(body, "csrf"), "username": "alice", "password": "alice-demo-password",
    "return_to": hidden(body, "return_to")})
assert status == 303, status
status, _, page = call(urllib.parse.urljoin(base, headers["Location"]))
assert status == 200 and 'id="approve"' in page, page
shown = re.search(r'<strong>([^<]*)</strong>', page).group(1)
print("   approval page: client %r" % shown)
if "/authorize" in link:
    fields = ["csrf", "response_type", "client_id", "redirect_uri", "state", "code_challenge",
              "code_challenge_method", "scopes"]
    form = {f: hidden(page, f) for f in fields}
    form["decision"] = "approve"
    status, headers, _ = call(base + "/authorize", form)
    assert status == 302, status
    callback = headers["Location"]
    print("   redirect to the CLI's listener: %s" % re.sub(r"code=[^&]+", "code=...", callback))
    approved = time.time()
    urllib.request.urlopen(callback).read()
else:
    form = {f: hidden(page, f) for f in ["csrf", "user_code", "confirmed_code"]}
    form["decision"] = "approve"
    status, _, done = call(base + "/device", form)
    assert status == 200 and "Device approved" in done, done
    approved = time.time()
deadline = approved + 30
while time.time() < deadline and done_marker not in open(log).read():
    time.sleep(0.05)
print("   the CLI finished %.2f s after the approval" % (time.time() - approved))
PY
}

# Runs `aws sso login --profile rolegate --no-browser $*`, approves its link.
login() {
    local log="$work/login.log"
    : > "$log"
    "$aws" sso login --profile rolegate --no-browser "$@" > "$log" 2>&1 &
    local pid=$!
    local link=""
    for _ in $(seq 150); do
        link="$(grep -Eo 'http://127\.0\.0\.1:[0-9]+/(authorize\?[^ ]+|device\?user_code=[A-Z-]+)' "$log" | head -1 || true)"
        [ -n "$link" ] && break
        sleep 0.2
    done
    [ -n "$link" ] || { cat "$log"; echo "no sign-in link" >&2; exit 1; }
    echo "   link: ${link:0:90}..."
    approve "$link" "$log"
    wait "$pid"
    sed 's/^/   | /' "$log" | grep -v '^   | http' | grep -v '^   | $' || true
}

echo "== aws configure sso --profile configured (prompts answered on stdin; endpoints from AWS_ENDPOINT_URL_*)"
log="$work/configure.log"
: > "$log"
{
    printf 'rolegate\n%s\nus-east-1\nsso:account:access\n' "$start_url"
    # After the sign-in: the account is the only one; pick Developer (second role).
    for _ in $(seq 300); do grep -q 'roles available' "$log" && break; sleep 0.1; done
    sleep 0.5; printf '\x1b[B\r'; sleep 0.5; printf 'us-east-1\n'; sleep 0.5; printf 'json\n'; sleep 2
} | AWS_ENDPOINT_URL_SSO_OIDC="$base" AWS_ENDPOINT_URL_SSO="$base" AWS_ENDPOINT_URL_STS="$base" \
    "$aws" configure sso --profile configured --no-browser > "$log" 2>&1 &
pid=$!
link=""
for _ in $(seq 150); do
    link="$(grep -Eo 'http://127\.0\.0\.1:[0-9]+/authorize\?[^ ]+' "$log" | head -1 || true)"
    [ -n "$link" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
done
# With a live token of sso-session rolegate (rolegate login above) it signs in no more.
if [ -n "$link" ]; then approve "$link" "$log" "roles available"; else echo "   (already signed in: sso-session rolegate has a live token)"; fi
wait "$pid"
grep -E 'available|Using the account|get-caller-identity' "$log" | sed 's/^/   | /'
echo "== aws sts get-caller-identity --profile configured (AWS_ENDPOINT_URL_* set)"
AWS_ENDPOINT_URL_SSO="$base" AWS_ENDPOINT_URL_STS="$base" \
    "$aws" sts get-caller-identity --profile configured --output json

echo "== rolegate login --url $base --write-config --no-browser (device code)"
log="$work/rolegate-login.log"
"$bin" login --url "$base" --write-config --no-browser > "$log" 2>&1 &
pid=$!
link=""
for _ in $(seq 150); do
    link="$(grep -Eo 'http://127\.0\.0\.1:[0-9]+/device\?user_code=[A-Z-]+' "$log" | head -1 || true)"
    [ -n "$link" ] && break
    sleep 0.2
done
approve "$link" "$log" "Updated"
wait "$pid"
grep -E '^(Signed in|Updated)' "$log" | sed 's/^/   | /'
# What `aws configure sso` adds for a role: a native SSO profile of the session.
cat >> "$AWS_CONFIG_FILE" <<EOF

[profile developer]
sso_session = rolegate
sso_account_id = 123456789012
sso_role_name = Developer
region = us-east-1
services = rolegate
EOF
echo "== ~/.aws/config"
sed 's/^/   | /' "$AWS_CONFIG_FILE"

echo "== aws sso login --profile rolegate (default: authorization code + PKCE)"
login
echo "== aws sts get-caller-identity --profile developer"
"$aws" sts get-caller-identity --profile developer --output json
echo "== aws sts get-caller-identity --profile Developer-123456789012 (credential_process = rolegate credentials, reading the token the CLI v2 saved)"
PATH="$(cd "$(dirname "$bin")" && pwd):$PATH" "$aws" sts get-caller-identity --profile Developer-123456789012 --output json
token_file="$HOME/.aws/sso/cache/$(printf rolegate | sha1sum | cut -d' ' -f1).json"
token="$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["accessToken"])' "$token_file")"
echo "== aws sso list-accounts --profile rolegate"
"$aws" sso list-accounts --profile rolegate --access-token "$token" --output json
echo "== aws sso logout --profile rolegate"
"$aws" sso logout --profile rolegate
echo "   token file after logout: $([ -e "$token_file" ] && echo present || echo deleted)"
echo "== the logged-out token at Rolegate"
"$aws" sso list-accounts --profile rolegate --access-token "$token" --output json 2>&1 | tail -1 || true

echo "== aws sso login --profile rolegate --use-device-code"
login --use-device-code
echo "== aws sts get-caller-identity --profile developer"
"$aws" sts get-caller-identity --profile developer --output json
echo "== aws sso logout --profile rolegate"
"$aws" sso logout --profile rolegate

echo "== the default profile still points at AWS (its endpoint, not contacted)"
"$python" -c '
from awscli.botocore.session import Session
from awscli.botocore import UNSIGNED
from awscli.botocore.config import Config
s = Session(profile="default")
print("   sso-oidc:", s.create_client("sso-oidc", region_name="eu-west-1", config=Config(signature_version=UNSIGNED)).meta.endpoint_url)'
echo "OK"
