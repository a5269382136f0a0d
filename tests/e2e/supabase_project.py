"""The parts of a Supabase project that the page and the token function rely on, for e2e tests.

A project publishes its signing keys at `/auth/v1/.well-known/jwks.json`; the token function
fetches them to verify the user's access token. `SupabaseProject` serves one ES256 key the tests
hold, at that path on a loopback port, and issues access tokens with it carrying the claims
Supabase Auth puts in a signed-in user's token. No Supabase Auth server (GoTrue) runs here:
every other request is answered 404 and recorded, so a test sees whether the page tried to
reach Auth.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

JWKS_PATH = "/auth/v1/.well-known/jwks.json"
AUDIENCE = "authenticated"


class SupabaseProject:
    """A project URL whose key set the token function trusts, on a free loopback port."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = secrets.token_hex(8)
        self.key_set_reads = 0
        self.other_requests: list[tuple[str, str]] = []  # (method, path) of all but the key set
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/v1"

    @property
    def storage_key(self) -> str:
        """Where supabase-js keeps the session: `sb-<first label of the host>-auth-token`."""
        host = urlsplit(self.url).hostname or ""
        return f"sb-{host.split('.')[0]}-auth-token"

    def key_set(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "ES256", "use": "sig"}]}

    def access_token(self, user_id: str, email: str, *, expires_at: int) -> str:
        """A user's access token, signed and shaped as Supabase Auth issues it."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user_id,
            "aud": AUDIENCE,
            "exp": expires_at,
            "iat": now,
            "email": email,
            "phone": "",
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {},
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": "password", "timestamp": now}],
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
        }
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})

    def session(self, user_id: str, email: str, *, ttl: int = 3600) -> dict[str, Any]:
        """The session object supabase-js stores after a password sign-in.

        It expires in `ttl` seconds: far beyond supabase-js's refresh margin (90 s), so the
        page neither refreshes it nor asks Auth for the user, which it has in full.
        """
        expires_at = int(time.time()) + ttl
        return {
            "access_token": self.access_token(user_id, email, expires_at=expires_at),
            "token_type": "bearer",
            "expires_in": ttl,
            "expires_at": expires_at,
            "refresh_token": secrets.token_urlsafe(12),
            "user": {
                "id": user_id,
                "aud": AUDIENCE,
                "role": "authenticated",
                "email": email,
                "email_confirmed_at": "2026-01-01T00:00:00Z",
                "app_metadata": {"provider": "email", "providers": ["email"]},
                "user_metadata": {},
                "identities": [],
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
                "is_anonymous": False,
            },
        }

    def session_file(self, path: Path, session: dict[str, Any]) -> Path:
        """The file call.mjs reads to put `session` where supabase-js looks for it."""
        path.write_text(json.dumps({"storageKey": self.storage_key, "session": session}))
        return path

    def record(self, method: str, path: str) -> None:
        with self._lock:
            if method == "GET" and path == JWKS_PATH:
                self.key_set_reads += 1
            else:
                self.other_requests.append((method, path))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(project: SupabaseProject) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            project.record("GET", self.path)
            if self.path == JWKS_PATH:
                self._json(200, project.key_set())
            else:
                self._json(404, {"code": 404, "error_code": "not_found", "msg": "not served here"})

        def do_POST(self) -> None:
            project.record("POST", self.path)
            self._json(404, {"code": 404, "error_code": "not_found", "msg": "not served here"})

        def do_OPTIONS(self) -> None:
            # CORS preflight of the page's requests: let them through so they are seen.
            project.record("OPTIONS", self.path)
            self.send_response(204)
            self._cors()
            self.end_headers()

        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header(
                "Access-Control-Allow-Headers",
                self.headers.get("Access-Control-Request-Headers") or "authorization",
            )

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
