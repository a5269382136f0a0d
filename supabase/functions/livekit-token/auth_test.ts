/**
 * Supabase access tokens verified by the project's key set (served over real HTTP on
 * 127.0.0.1) and by the legacy secret, and a suite of forgeries that must all be refused.
 */

import assert from "node:assert/strict";
import { exportSPKI } from "jose";
import { createHandler, type Handler, loadConfig } from "./index.ts";
import {
  BASE_ENV,
  bearer,
  errorOf,
  issue,
  JwksServer,
  JWT_SECRET,
  type KeyPair,
  keyPair,
  unsignedJwt,
  USER,
  userJwt,
  verify,
} from "./testing.ts";

interface Project {
  readonly jwks: JwksServer;
  readonly issuer: string;
  readonly es256: KeyPair;
  readonly rs256: KeyPair;
  /** Verifies by the key set and, unless `secret` is false, by the legacy secret too. */
  handler(options?: { secret?: boolean }): Handler;
}

async function project(): Promise<Project> {
  const es256 = await keyPair("ES256", "es-key-1");
  const rs256 = await keyPair("RS256", "rs-key-1");
  const jwks = new JwksServer([es256, rs256]);
  const issuer = `${jwks.projectUrl}/auth/v1`;
  return {
    jwks,
    issuer,
    es256,
    rs256,
    handler({ secret = true } = {}) {
      const cfg = loadConfig({
        ...BASE_ENV,
        SUPABASE_JWT_ISSUER: undefined,
        SUPABASE_URL: jwks.projectUrl,
        SUPABASE_JWT_SECRET: secret ? JWT_SECRET : undefined,
      });
      assert.deepEqual(cfg.problems, []);
      return createHandler(cfg);
    },
  };
}

/** Runs `body` against a fresh project whose key set is shut down afterwards. */
function withProject(name: string, body: (p: Project) => Promise<void>): void {
  Deno.test(name, async () => {
    const p = await project();
    try {
      await body(p);
    } finally {
      await p.jwks.close();
    }
  });
}

function signed(p: Project, key: KeyPair, claims: Record<string, unknown> = {}) {
  return userJwt({ iss: p.issuer, ...claims }, { alg: key.alg, key: key.privateKey, kid: key.kid });
}

async function refused(serve: Handler, token: string, expected: RegExp): Promise<void> {
  const res = await serve(bearer(token));
  const message = await errorOf(res);
  assert.equal(res.status, 401, message);
  assert.match(message, expected);
  assert.match(res.headers.get("www-authenticate") ?? "", /invalid_token/);
}

withProject("ES256 and RS256 tokens verify by the key set found from SUPABASE_URL", async (p) => {
  const serve = p.handler({ secret: false });
  for (const key of [p.es256, p.rs256]) {
    const body = await issue(await serve(bearer(await signed(p, key))));
    assert.equal((await verify(body.participantToken)).sub, USER, key.alg);
  }
});

withProject("the key set is fetched once and then cached", async (p) => {
  const serve = p.handler();
  for (let i = 0; i < 3; i++) await issue(await serve(bearer(await signed(p, p.es256))));
  assert.equal(p.jwks.requests, 1);
});

withProject("a legacy HS256 token verifies beside the key set", async (p) => {
  const body = await issue(await p.handler()(bearer(await userJwt({ iss: p.issuer }))));
  assert.equal(body.participantName, USER);
});

withProject("forged: alg none", async (p) => {
  await refused(p.handler(), unsignedJwt({ iss: p.issuer }), /"none" is not an accepted/);
});

withProject("forged: signed with another key under the project's key id", async (p) => {
  const stranger = await keyPair("ES256", p.es256.kid);
  await refused(p.handler(), await signed(p, stranger), /^access token is invalid$/);
});

withProject("forged: signed with a key id the project does not publish", async (p) => {
  const stranger = await keyPair("RS256", "not-ours");
  await refused(p.handler(), await signed(p, stranger), /key this project does not publish/);
});

withProject("forged: HS256 signed with another secret", async (p) => {
  const token = await userJwt({ iss: p.issuer }, {
    key: "another-projects-secret-0123456789abcdef",
  });
  await refused(p.handler(), token, /^access token is invalid$/);
});

withProject(
  "forged: HS256 signed with the project's public key (algorithm confusion)",
  async (p) => {
    for (const key of [p.es256, p.rs256]) {
      const pem = await exportSPKI(key.publicKey);
      const asText = await userJwt({ iss: p.issuer }, { key: pem, kid: key.kid });
      const asJwk = await userJwt({ iss: p.issuer }, {
        key: JSON.stringify(key.jwk),
        kid: key.kid,
      });
      // With a legacy secret the token is checked against the secret only, and fails.
      await refused(p.handler(), asText, /^access token is invalid$/);
      await refused(p.handler(), asJwk, /^access token is invalid$/);
      // Without one, HS256 is not accepted at all.
      await refused(p.handler({ secret: false }), asText, /"HS256" is not an accepted/);
    }
  },
);

withProject("forged: an algorithm the project does not use (HS512)", async (p) => {
  const [, payload, signature] = (await userJwt({ iss: p.issuer })).split(".");
  const header = btoa(JSON.stringify({ alg: "HS512" })).replace(/=+$/, "");
  await refused(p.handler(), `${header}.${payload}.${signature}`, /"HS512" is not an accepted/);
});

withProject("refused: expired", async (p) => {
  const token = await userJwt({ iss: p.issuer }, {
    alg: "ES256",
    key: p.es256.privateKey,
    kid: p.es256.kid,
    expiresIn: "-1m",
  });
  await refused(p.handler(), token, /expired/);
});

withProject("refused: no expiry at all", async (p) => {
  const token = await userJwt({ iss: p.issuer, exp: undefined }, {
    alg: "ES256",
    key: p.es256.privateKey,
    kid: p.es256.kid,
  });
  await refused(p.handler(), token, /invalid/);
});

withProject("refused: wrong audience", async (p) => {
  await refused(
    p.handler(),
    await signed(p, p.es256, { aud: "anon" }),
    /audience must be "authenticated"/,
  );
  await refused(p.handler(), await signed(p, p.es256, { aud: undefined }), /audience/);
});

withProject("refused: a token of another project (issuer)", async (p) => {
  const other = "https://project-b.supabase.test/auth/v1";
  await refused(p.handler(), await signed(p, p.rs256, { iss: other }), /another Supabase project/);
  await refused(p.handler(), await userJwt({ iss: other }), /another Supabase project/);
});

withProject("refused: a role other than authenticated (service_role)", async (p) => {
  await refused(
    p.handler(),
    await signed(p, p.es256, { role: "service_role" }),
    /role must be "authenticated"/,
  );
});

withProject("refused: no user id", async (p) => {
  await refused(p.handler(), await signed(p, p.es256, { sub: "" }), /names no valid user/);
  await refused(p.handler(), await signed(p, p.es256, { sub: 42 }), /names no valid user/);
});

withProject("refused: a signature cut off or tampered with", async (p) => {
  const token = await signed(p, p.es256);
  await refused(p.handler(), token.slice(0, -10), /invalid/);
  const [header, , signature] = token.split(".");
  const claims = btoa(
    JSON.stringify({
      sub: "someone-else",
      role: "authenticated",
      aud: "authenticated",
      iss: p.issuer,
      exp: 9999999999,
    }),
  )
    .replace(/=+$/, "");
  await refused(p.handler(), `${header}.${claims}.${signature}`, /invalid/);
});

Deno.test("refused: not a JWT, and not a bearer header", async () => {
  const serve = createHandler(loadConfig(BASE_ENV));
  await refused(serve, "not-a-jwt", /not a JWT/);
  const basic = await serve(
    new Request("http://127.0.0.1/", {
      method: "POST",
      headers: { authorization: "Basic dXNlcjpwYXNz" },
    }),
  );
  assert.equal(basic.status, 401);
  assert.match(await errorOf(basic), /Bearer <token>/);
});

Deno.test("a key set that cannot be reached answers 503 with Retry-After, not 401", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const p = await project();
  await p.jwks.close();
  const serve = createHandler(loadConfig({
    ...BASE_ENV,
    SUPABASE_JWT_ISSUER: undefined,
    SUPABASE_URL: `http://127.0.0.1:${port}`,
  }));
  const res = await serve(bearer(await signed(p, p.es256)));
  assert.equal(res.status, 503);
  assert.match(await errorOf(res), /cannot verify access tokens right now/);
  assert.equal(res.headers.get("retry-after"), "5");
});
