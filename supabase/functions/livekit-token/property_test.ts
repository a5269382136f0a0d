/**
 * Property-based tests with random bodies, headers and tokens: the function never answers
 * 5xx to bad input, never hands out a token without a valid caller, never lets anyone into a
 * room they were not invited to, and every refusal is exactly one JSON error.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { createHandler, type Handler, loadConfig } from "./index.ts";
import {
  BASE_ENV,
  dispatchedAgents,
  ENDPOINT,
  from,
  JwksServer,
  keyPair,
  NO_LIMITS,
  type Signing,
  type TokenBody,
  unsignedJwt,
  USER,
  userJwt,
  verify,
} from "./testing.ts";

/** What a token proves about its bearer, whatever its shape. */
type Proves = "user" | "anonymous" | "nobody" | "invalid";

interface Credential {
  readonly label: string;
  readonly token: string;
  readonly proves: Proves;
}

const ORIGIN = "https://app.voicefleet.test";
const FIELDS = [
  "agentName",
  "participant_name",
  "participantName",
  "room_config",
  "roomConfig",
  "roomName",
  "room_name",
  "participant_identity",
  "participant_metadata",
  "participant_attributes",
  "agents",
  "agent_name",
  "invite_code",
  "inviteCode",
  "invite_with_token",
  "inviteWithToken",
  "__proto__",
  "constructor",
];

/** Participant tokens and invite codes, real and broken, to put in invite fields. */
interface Invites {
  /** Every value worth sending as an invite code or a participant token. */
  readonly values: string[];
  /** Rooms of real invites, with who invited: the only rooms a token without an agent is for. */
  readonly rooms: Map<string, string>;
  /** The room of USER's call: the only room USER may be given invites to. */
  readonly userRoom: string;
}

const FRIEND = "0e7d9c31-8a4b-4f2e-b6d1-2c3b4a5d6e7f";

/** The project's published signing key. */
const keys = { es: await keyPair("ES256", "prop-es") };

/** Valid tokens of every kind and forgeries of every kind, signed once for all runs. */
async function credentials(issuer: string): Promise<Credential[]> {
  // Same key id as the published key, different key.
  const stranger = await keyPair("ES256", keys.es.kid);
  const hs = (claims: Record<string, unknown>, signing: Signing = {}) =>
    userJwt({ iss: issuer, ...claims }, signing);
  const valid = await hs({});
  const flipped = valid.slice(0, -4) + (valid.endsWith("AAAA") ? "BBBB" : "AAAA");
  return [
    { label: "user (HS256)", token: valid, proves: "user" },
    {
      label: "user (ES256)",
      token: await hs({}, { alg: "ES256", key: keys.es.privateKey, kid: keys.es.kid }),
      proves: "user",
    },
    { label: "anonymous user", token: await hs({ is_anonymous: true }), proves: "anonymous" },
    {
      label: "anon key",
      token: await userJwt({ role: "anon", sub: undefined, aud: undefined, iss: "supabase" }),
      proves: "nobody",
    },
    { label: "expired", token: await hs({}, { expiresIn: "-2m" }), proves: "invalid" },
    { label: "other secret", token: await hs({}, { key: "x".repeat(48) }), proves: "invalid" },
    { label: "alg none", token: unsignedJwt({ iss: issuer }), proves: "invalid" },
    {
      label: "HS256 keyed with the public key",
      token: await hs({}, { key: JSON.stringify(keys.es.jwk), kid: keys.es.kid }),
      proves: "invalid",
    },
    { label: "wrong audience", token: await hs({ aud: "anon" }), proves: "invalid" },
    {
      label: "other project",
      token: await hs({ iss: "https://b.test/auth/v1" }),
      proves: "invalid",
    },
    { label: "service role", token: await hs({ role: "service_role" }), proves: "invalid" },
    {
      label: "foreign ES256 key",
      token: await hs({}, { alg: "ES256", key: stranger.privateKey, kid: stranger.kid }),
      proves: "invalid",
    },
    { label: "tampered", token: flipped, proves: "invalid" },
  ];
}
/** A call of USER and one of FRIEND, each with an invite; then broken copies of each. */
async function invites(handler: Handler, issuer: string): Promise<Invites> {
  const ask = async (sub: string, fields?: Record<string, string>) => {
    const jwt = await userJwt({ iss: issuer, sub });
    const res = await handler(
      new Request(ENDPOINT, {
        method: "POST",
        headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
        body: JSON.stringify(fields ?? {}),
      }),
    );
    assert.equal(res.status, 200, await res.clone().text());
    return await res.json() as Record<string, string>;
  };
  const mine = await ask(USER);
  const theirs = await ask(FRIEND);
  const myCode = (await ask(USER, { invite_with_token: mine.participantToken })).inviteCode;
  const theirCode = (await ask(FRIEND, { invite_with_token: theirs.participantToken })).inviteCode;
  const broken = (text: string) => text.slice(0, -3) + (text.endsWith("AAA") ? "BBB" : "AAA");
  return {
    values: [
      mine.participantToken,
      theirs.participantToken,
      myCode,
      theirCode,
      broken(myCode),
      broken(theirCode),
      broken(mine.participantToken),
      `v1.${theirCode.split(".")[1]}.${myCode.split(".")[2]}`,
    ],
    rooms: new Map([[mine.roomName, USER], [theirs.roomName, FRIEND]]),
    userRoom: mine.roomName,
  };
}

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

/** A token from the pool, or random text shaped more or less like a JWT. */
function tokenArb(pool: Credential[]): fc.Arbitrary<Credential> {
  const segment = fc.base64String({ maxLength: 60 }).map((s) => s.replace(/=+$/, ""));
  const randomToken = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.tuple(segment, segment, segment).map((parts) => parts.join(".")),
    fc.tuple(fc.json({ maxDepth: 2 }), fc.json({ maxDepth: 2 })).map(([h, p]) =>
      `${base64(h)}.${base64(p)}.`
    ),
  ).map((token): Credential => ({ label: "random", token, proves: "invalid" }));
  return fc.oneof(fc.constantFrom(...pool), randomToken);
}

interface Attempt {
  readonly method: string;
  readonly credential: Credential | null;
  readonly scheme: string;
  readonly body: string | Uint8Array<ArrayBuffer> | null;
  readonly contentType: string | null;
  readonly origin: string | null;
  readonly extra: ReadonlyArray<readonly [string, string]>;
}

/** Mostly nothing, sometimes a value. */
function rarely<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, arb);
}

/** An invite request or a join by invite, well-formed more often than random objects are. */
function invitingArb(invited: Invites): fc.Arbitrary<string> {
  return fc.record(
    {
      field: fc.constantFrom("invite_code", "inviteCode", "invite_with_token", "inviteWithToken"),
      value: fc.oneof(
        { arbitrary: fc.constantFrom(...invited.values), weight: 4 },
        fc.jsonValue({ maxDepth: 1 }),
        fc.string({ maxLength: 600 }),
      ),
      name: rarely(fc.constantFrom("Bo", "", "voicefleet-demo")),
      extra: rarely(fc.constantFrom("agentName", "room_name", "invite_code")),
    },
  ).map(({ field, value, name, extra }) =>
    JSON.stringify({
      [field]: value,
      ...(name === undefined ? {} : { participant_name: name }),
      ...(extra === undefined ? {} : { [extra]: name ?? "voicefleet-demo" }),
    })
  );
}

/** Often-plausible requests, so that both tokens and every kind of refusal come up. */
function attemptArb(pool: Credential[], invited: Invites): fc.Arbitrary<Attempt> {
  const weighted = <T>(likely: fc.Arbitrary<T>, unlikely: fc.Arbitrary<T>) =>
    fc.oneof({ arbitrary: likely, weight: 4 }, { arbitrary: unlikely, weight: 1 });
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    { arbitrary: fc.constantFrom(...invited.values), weight: 2 },
    fc.constantFrom("voicefleet-demo", "sales", "", "a.b", "x".repeat(65), "Ada"),
    fc.record({
      agents: fc.array(
        fc.dictionary(
          fc.constantFrom("agent_name", "agentName", "metadata"),
          fc.oneof(fc.constantFrom("voicefleet-demo", "sales", "other"), fc.jsonValue()),
        ),
        { maxLength: 2 },
      ),
    }),
  );
  const key = weighted(fc.constantFrom(...FIELDS), fc.string({ maxLength: 12 }));
  const object = fc.dictionary(key, value, { maxKeys: 3 }).map((o) => JSON.stringify(o));
  const inviting = invitingArb(invited);
  const body = fc.oneof(
    { arbitrary: fc.constantFrom(null, "", "{}"), weight: 3 },
    { arbitrary: object, weight: 4 },
    { arbitrary: inviting, weight: 3 },
    fc.json({ maxDepth: 3 }),
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => bytes.slice()),
    fc.constant("x".repeat(5000)),
  );
  const noise = fc.string({ maxLength: 30 });
  return fc.record({
    method: weighted(fc.constant("POST"), fc.constantFrom("OPTIONS", "GET", "PUT", "DELETE")),
    credential: weighted(tokenArb(pool), fc.constant(null)),
    scheme: weighted(
      fc.constantFrom("Bearer ", "bearer "),
      fc.constantFrom("Bearer  ", "Basic ", "", "Bearer", "Token "),
    ),
    body,
    contentType: weighted(
      fc.constantFrom("application/json", "application/json; charset=utf-8"),
      fc.option(fc.oneof(fc.constant("text/plain"), noise), { nil: null }),
    ),
    origin: weighted(
      fc.constantFrom(null, ORIGIN),
      fc.oneof(fc.constant("null"), fc.webUrl(), noise),
    ),
    extra: fc.array(
      fc.tuple(fc.constantFrom("x-forwarded-for", "apikey", "x-client-info", "cookie"), noise),
      { maxLength: 3 },
    ),
  });
}

/** Builds the request; header values the Fetch API itself rejects are dropped. */
function request(a: Attempt): Request {
  const headers = new Headers();
  const set = (name: string, val: string) => {
    try {
      headers.set(name, val);
    } catch {
      // Not a legal header value: a browser or proxy would never send it either.
    }
  };
  if (a.credential !== null) set("authorization", `${a.scheme}${a.credential.token}`);
  if (a.contentType !== null) set("content-type", a.contentType);
  if (a.origin !== null) set("origin", a.origin);
  for (const [name, val] of a.extra) set(name, val);
  const hasBody = a.body !== null && a.method !== "GET";
  return new Request(ENDPOINT, { method: a.method, headers, body: hasBody ? a.body : undefined });
}

/** Whether the request carried a caller the server must accept, given the guest setting. */
function entitled(a: Attempt, req: Request, allowGuests: boolean): boolean {
  const header = req.headers.get("authorization");
  if (header === null) return allowGuests;
  const proper = /^Bearer\s+\S+$/i.test(header.trim()) && a.credential !== null &&
    header.trim().endsWith(a.credential.token);
  if (!proper) return false;
  const proves = a.credential!.proves;
  return proves === "user" || (allowGuests && (proves === "anonymous" || proves === "nobody"));
}

/** Checks one answer and gives back its status, so a run can show it saw every kind. */
async function checkAnswer(
  a: Attempt,
  req: Request,
  res: Response,
  allowGuests: boolean,
  invited: Invites,
): Promise<Outcome> {
  assert.ok(
    res.status < 500,
    `HTTP ${res.status} for ${JSON.stringify(a).slice(0, 300)}: ${await res.clone().text()}`,
  );
  if (res.status === 204) {
    assert.equal(req.method, "OPTIONS");
    assert.equal(await res.text(), "");
    return res.status;
  }
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  const body = await res.json() as Record<string, unknown>;
  if (res.status === 200) {
    assert.ok(entitled(a, req, allowGuests), `token for ${a.credential?.label ?? "no credential"}`);
    if ("inviteCode" in body) {
      // Only a caller with a lasting identity, and only to the room of their own token.
      assert.ok(a.credential?.proves === "user" || a.credential?.proves === "anonymous");
      assert.equal(body.roomName, invited.userRoom);
      return "invite";
    }
    const token = body as unknown as TokenBody;
    const claims = await verify(token.participantToken);
    assert.equal(claims.video?.room, token.roomName);
    if (dispatchedAgents(claims).length === 0) {
      const inviter = invited.rooms.get(token.roomName);
      assert.ok(inviter !== undefined, `joined ${token.roomName} uninvited`);
      assert.notEqual(claims.sub, inviter, "joined by one's own invite");
      return "joined by invite";
    }
    if (a.credential?.proves === "user" && req.headers.has("authorization")) {
      assert.equal(claims.sub, USER);
    }
    return res.status;
  }
  assert.deepEqual(Object.keys(body), ["error"], JSON.stringify(body));
  assert.equal(typeof body.error, "string");
  assert.ok((body.error as string).length > 0);
  if (res.status === 429) assert.match(res.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
  return res.status;
}

/** A status, or what a 200 gave: an invite code, or a token to an invited caller's room. */
type Outcome = number | "invite" | "joined by invite";

/** Outcomes seen over a run, to prove the property was not checked on refusals alone. */
class Seen {
  readonly #counts = new Map<Outcome, number>();
  add(outcome: Outcome): void {
    this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + 1);
  }
  includes(...outcomes: Outcome[]): void {
    const seen = Object.fromEntries(this.#counts);
    for (const outcome of outcomes) {
      assert.ok(this.#counts.has(outcome), `never saw ${outcome}: ${JSON.stringify(seen)}`);
    }
  }
}

async function withKeySet(
  run: (
    serve: (allowGuests: boolean, limits: boolean) => Handler,
    pool: Credential[],
    invited: Invites,
  ) => Promise<void>,
) {
  const jwks = new JwksServer([keys.es]);
  const issuer = `${jwks.projectUrl}/auth/v1`;
  try {
    const pool = await credentials(issuer);
    const serve = (allowGuests: boolean, limits: boolean) => {
      const cfg = loadConfig({
        ...BASE_ENV,
        SUPABASE_JWT_ISSUER: undefined,
        SUPABASE_URL: jwks.projectUrl,
        ALLOW_GUESTS: String(allowGuests),
        CORS_ALLOWED_ORIGINS: ORIGIN,
        LIVEKIT_AGENT_NAMES: "voicefleet-demo,sales",
        ROOM_MAX_CALLERS: "3",
        ...(limits ? {} : NO_LIMITS),
      });
      assert.deepEqual(cfg.problems, []);
      return createHandler(cfg);
    };
    await run(serve, pool, await invites(serve(false, false), issuer));
  } finally {
    await jwks.close();
  }
}

for (const allowGuests of [false, true]) {
  Deno.test(`random requests (guests ${allowGuests ? "on" : "off"}): no 5xx, no token without a caller, one JSON error`, async () => {
    await withKeySet(async (serve, pool, invited) => {
      const handler = serve(allowGuests, false);
      const seen = new Seen();
      await fc.assert(
        fc.asyncProperty(attemptArb(pool, invited), async (attempt) => {
          const req = request(attempt);
          seen.add(
            await checkAnswer(attempt, req, await handler(req.clone()), allowGuests, invited),
          );
        }),
        { numRuns: 500 },
      );
      seen.includes(200, 204, 400, 401, 403, 405);
    });
  });
}

Deno.test("random invite fields from signed-in callers: only invited rooms, no 5xx, one JSON error", async () => {
  await withKeySet(async (serve, pool, invited) => {
    const handler = serve(false, false);
    const users = pool.filter((c) => c.proves === "user");
    const attempt = fc.record({
      credential: fc.oneof(
        { arbitrary: fc.constantFrom(...users), weight: 4 },
        fc.constantFrom(...pool),
      ),
      body: invitingArb(invited),
    }).map(({ credential, body }): Attempt => ({
      method: "POST",
      credential,
      scheme: "Bearer ",
      body,
      contentType: "application/json",
      origin: null,
      extra: [],
    }));
    const seen = new Seen();
    await fc.assert(
      fc.asyncProperty(attempt, async (a) => {
        const req = request(a);
        seen.add(await checkAnswer(a, req, await handler(req.clone()), false, invited));
      }),
      { numRuns: 400 },
    );
    seen.includes("invite", "joined by invite", 400, 401, 403, 409);
  });
});

Deno.test("random requests under tight limits: refusals are 429 JSON with Retry-After", async () => {
  await withKeySet(async (serve, pool, invited) => {
    const handler = serve(true, true);
    const seen = new Seen();
    await fc.assert(
      fc.asyncProperty(
        attemptArb(pool, invited),
        fc.constantFrom("192.0.2.1", "192.0.2.2", "2001:db8::1"),
        async (attempt, address) => {
          const req = request(attempt);
          seen.add(
            await checkAnswer(
              attempt,
              req,
              await handler(req.clone(), from(address)),
              true,
              invited,
            ),
          );
        },
      ),
      { numRuns: 300 },
    );
    seen.includes(200, 429);
  });
});

Deno.test("the credential pool is what it claims: each valid kind verifies, each forgery fails", async () => {
  await withKeySet(async (serve, pool) => {
    const handler = serve(true, false);
    for (const credential of pool) {
      const res = await handler(
        new Request(ENDPOINT, {
          method: "POST",
          headers: { authorization: `Bearer ${credential.token}` },
        }),
      );
      const expected = credential.proves === "invalid" ? 401 : 200;
      assert.equal(res.status, expected, `${credential.label}: ${await res.text()}`);
    }
  });
});
