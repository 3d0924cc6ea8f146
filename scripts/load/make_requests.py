"""Makes the requests of the STS load run and writes one wrk script per operation.

    make_requests.py --endpoint http://127.0.0.1:PORT --out DIR
        --access-key-id AK --secret-access-key SK --role-arn ARN
        [--web-role-arn ARN --web-token-file FILE]

Each operation is called once with boto3 (botocore signs it exactly as an SDK does;
AssumeRoleWithWebIdentity is unsigned) against the endpoint; the request boto3 sent
is captured and written to DIR/<Operation>.lua for wrk to replay. A SigV4 signature
stays valid for 5 minutes and STS has no nonce, so replaying it is what a fleet of
clients calling with the same credentials looks like. The call must succeed, so a
broken setup stops the run before any load is sent. Loopback endpoints only.
"""

import argparse
import sys
from urllib.parse import urlsplit

import boto3
import botocore.config

SKIP_HEADERS = {"content-length", "host"}


def lua_string(value: str) -> str:
    level = 1
    while f"]{'=' * level}]" in value:
        level += 1
    eq = "=" * level
    return f"[{eq}[{value}]{eq}]"


def wrk_script(method: str, path: str, host: str, headers: dict, body: str) -> str:
    lines = [
        "-- Written by scripts/load/make_requests.py: one captured boto3 request, replayed.",
        f"wrk.method = {lua_string(method)}",
        f"wrk.path = {lua_string(path)}",
        f"wrk.body = {lua_string(body)}",
        f'wrk.headers["Host"] = {lua_string(host)}',
    ]
    for name, value in headers.items():
        if name.lower() not in SKIP_HEADERS:
            lines.append(f"wrk.headers[ {lua_string(name)} ] = {lua_string(value)}")
    lines.append(
        """
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local socket = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("RESULT %d %.1f %.3f %.3f %.3f %d %d\\n", summary.requests,
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000, summary.errors.status, socket))
end
"""
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--secret-access-key", required=True)
    parser.add_argument("--role-arn", required=True)
    parser.add_argument("--web-role-arn")
    parser.add_argument("--web-token-file")
    args = parser.parse_args()

    host = urlsplit(args.endpoint).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"make_requests: {args.endpoint} is not a loopback endpoint")

    client = boto3.client(
        "sts",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id=args.access_key_id,
        aws_secret_access_key=args.secret_access_key,
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )
    captured = {}

    def capture(request, **_kwargs):
        captured["request"] = request

    client.meta.events.register("before-send.sts.*", capture)

    calls = [
        ("GetCallerIdentity", lambda: client.get_caller_identity()),
        (
            "AssumeRole",
            lambda: client.assume_role(RoleArn=args.role_arn, RoleSessionName="load-run"),
        ),
    ]
    if args.web_role_arn and args.web_token_file:
        with open(args.web_token_file, encoding="ascii") as f:
            token = f.read().strip()
        calls.append(
            (
                "AssumeRoleWithWebIdentity",
                lambda: client.assume_role_with_web_identity(
                    RoleArn=args.web_role_arn, RoleSessionName="load-run", WebIdentityToken=token
                ),
            )
        )

    for name, call in calls:
        captured.clear()
        try:
            call()
        except Exception as error:  # noqa: BLE001 (report any failure and stop)
            sys.exit(f"make_requests: {name} against {args.endpoint} failed: {error}")
        request = captured["request"]
        url = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, bytes):
            body = body.decode()
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        script = wrk_script(request.method, url.path or "/", url.netloc, headers, body)
        with open(f"{args.out}/{name}.lua", "w", encoding="utf-8") as out:
            out.write(script)
        print(f"  {name}: ok ({'signed' if 'Authorization' in headers else 'unsigned'})")


if __name__ == "__main__":
    main()
