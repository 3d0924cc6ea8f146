"""A minimal OpenID Connect issuer for the AssumeRoleWithWebIdentity load run.

    oidc_issuer.py --port N --token-out FILE [--audience A] [--subject S] [--lifetime SECONDS]

Generates a throw-away RSA key, writes one RS256 ID token (issuer
http://127.0.0.1:N, valid one hour) to FILE, then serves the discovery document and
the JWKS on 127.0.0.1:N until it is terminated or --lifetime seconds have passed
(it stops by itself). Loopback only. Needs `cryptography` (installed with moto).
"""

import argparse
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KID = "rolegate-load"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-out", required=True)
    parser.add_argument("--audience", default="rolegate-load")
    parser.add_argument("--subject", default="system:serviceaccount:load:runner")
    parser.add_argument("--lifetime", type=int, default=900)
    args = parser.parse_args()

    issuer = f"http://127.0.0.1:{args.port}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    jwks = {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": KID,
                "n": b64url(int_bytes(numbers.n)),
                "e": b64url(int_bytes(numbers.e)),
            }
        ]
    }
    discovery = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks.json",
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
    }

    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": KID}
    claims = {
        "iss": issuer,
        "sub": args.subject,
        "aud": args.audience,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 3600,
    }
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    with open(args.token_out, "w", encoding="ascii") as out:
        out.write(signing_input + "." + b64url(signature))

    documents = {
        "/.well-known/openid-configuration": json.dumps(discovery).encode(),
        "/jwks.json": json.dumps(jwks).encode(),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            body = documents.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Timer(args.lifetime, server.shutdown).start()
    print(f"oidc issuer ready: {issuer}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
