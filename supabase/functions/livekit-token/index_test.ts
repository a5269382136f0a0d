import assert from "node:assert/strict";
import { createHandler, loadConfig } from "./index.ts";
import {
  API_KEY,
  API_SECRET,
  BASE_ENV,
  bearer,
  config,
  dispatchedAgents,
  ENDPOINT,
  errorOf,
  from,
  handler,
  issue,
  JWT_SECRET,
  post,
  roomConfigOf,
  USER,
  userJwt,
  verify,
} from "./testing.ts";

Deno.test("a signed-in user gets a minimal token for a new room that dispatches the agent", async () => {
  const body = await issue(await handler()(bearer(await userJwt())));
  assert.equal(body.serverUrl, "ws://127.0.0.1:7880");
  assert.match(body.roomName, /^voice-[0-9a-f]{16}$/);
  assert.equal(body.participantName, USER);

  const claims = await verify(body.participantToken);
  assert.equal(claims.sub, USER);
  assert.equal(claims.name, USER);
  assert.deepEqual(claims.video, {
    roomJoin: true,
    room: body.roomName,
    canPublish: true,
    // The JWT form of TrackSource.MICROPHONE.
    canPublishSources: ["microphone"],
    canSubscribe: true,
    canPublishData: true,
    canUpdateOwnMetadata: false,
  });
  assert.deepEqual(dispatchedAgents(claims), ["voicefleet-demo"]);
  assert.equal(claims.exp! - claims.nbf!, 600);
  assert.equal(body.expiresAt, new Date(claims.exp! * 1000).toISOString());
});

Deno.test("the room closes itself: at most 3 participants, empty and departure timeouts", async () => {
  const body = await issue(await handler()(bearer(await userJwt())));
  const room = roomConfigOf(await verify(body.participantToken));
  assert.equal(room.maxParticipants, 3);
  assert.equal(room.emptyTimeout, 60);
  assert.equal(room.departureTimeout, 10);
});

Deno.test("the room limits are configurable", async () => {
  const serve = handler({
    ROOM_MAX_PARTICIPANTS: "2",
    ROOM_EMPTY_TIMEOUT_SECONDS: "30",
    ROOM_DEPARTURE_TIMEOUT_SECONDS: "5",
  });
  const body = await issue(await serve(bearer(await userJwt())));
  const room = roomConfigOf(await verify(body.participantToken));
  assert.deepEqual(
    [room.maxParticipants, room.emptyTimeout, room.departureTimeout],
    [2, 30, 5],
  );
});

Deno.test("guests are refused by default: sign-in required", async () => {
  const res = await handler()(post());
  assert.equal(res.status, 401);
  assert.match(await errorOf(res), /sign-in required/);
  assert.equal(res.headers.get("www-authenticate"), "Bearer");
});

Deno.test("with ALLOW_GUESTS=true a guest gets a token and a new identity every time", async () => {
  const serve = handler({ ALLOW_GUESTS: "true" });
  const [a, b] = await Promise.all([issue(await serve(post())), issue(await serve(post()))]);
  assert.match(a.participantName, /^guest-[0-9a-f]{16}$/);
  assert.notEqual(a.participantName, b.participantName);
  assert.notEqual(a.roomName, b.roomName);
  assert.equal((await verify(a.participantToken)).sub, a.participantName);
});

Deno.test("anonymous sign-ins are guests: refused unless guests are allowed", async () => {
  const anonymous = await userJwt({ is_anonymous: true });
  const refused = await handler()(bearer(anonymous));
  assert.equal(refused.status, 403);
  assert.match(await errorOf(refused), /anonymous sign-ins count as guests/);

  const body = await issue(await handler({ ALLOW_GUESTS: "true" })(bearer(anonymous)));
  assert.equal(body.participantName, USER);
});

Deno.test("the project's anon key names nobody: a guest, so refused by default", async () => {
  const anonKey = await userJwt({ role: "anon", sub: undefined, aud: undefined, iss: "supabase" });
  const refused = await handler()(bearer(anonKey));
  assert.equal(refused.status, 401);
  assert.match(await errorOf(refused), /sign-in required/);
  const body = await issue(await handler({ ALLOW_GUESTS: "true" })(bearer(anonKey)));
  assert.match(body.participantName, /^guest-/);
});

Deno.test("AUTH_JWT_SECRET verifies users where SUPABASE_ names are reserved", async () => {
  const serve = handler({ SUPABASE_JWT_SECRET: undefined, AUTH_JWT_SECRET: JWT_SECRET });
  const body = await issue(await serve(bearer(await userJwt())));
  assert.equal(body.participantName, USER);
});

Deno.test("participant_name sets the display name, never the identity", async () => {
  const res = await handler()(
    bearer(await userJwt(), JSON.stringify({ participant_name: "Ada Lovelace" })),
  );
  const body = await issue(res);
  assert.equal(body.participantName, "Ada Lovelace");
  const claims = await verify(body.participantToken);
  assert.equal(claims.sub, USER);
  assert.equal(claims.name, "Ada Lovelace");
});

Deno.test("an agent on the allow-list may be asked for by name", async () => {
  const serve = handler({ LIVEKIT_AGENT_NAME: "front-desk", LIVEKIT_AGENT_NAMES: "sales,support" });
  const jwt = await userJwt();
  const asked = async (body: unknown) =>
    dispatchedAgents(
      await verify((await issue(await serve(bearer(jwt, JSON.stringify(body))))).participantToken),
    );
  assert.deepEqual(await asked({}), ["front-desk"]);
  assert.deepEqual(await asked({ agentName: "sales" }), ["sales"]);
  // LiveKit's standard request, in both spellings protobuf JSON allows.
  assert.deepEqual(await asked({ room_config: { agents: [{ agent_name: "support" }] } }), [
    "support",
  ]);
  assert.deepEqual(await asked({ roomConfig: { agents: [{ agentName: "front-desk" }] } }), [
    "front-desk",
  ]);
  assert.deepEqual(await asked({ room_config: { agents: [] } }), ["front-desk"]);
});

Deno.test("LIVEKIT_AGENT_NAMES alone: its first agent is the default", async () => {
  const serve = handler({ LIVEKIT_AGENT_NAMES: "alpha, beta" });
  const body = await issue(await serve(bearer(await userJwt())));
  assert.deepEqual(dispatchedAgents(await verify(body.participantToken)), ["alpha"]);
});

Deno.test("an agent not on the allow-list is refused with 403 naming it", async () => {
  const serve = handler({ LIVEKIT_AGENT_NAME: "front-desk" });
  const jwt = await userJwt();
  for (
    const body of [{ agentName: "sales-bot" }, {
      room_config: { agents: [{ agent_name: "sales-bot" }] },
    }]
  ) {
    const res = await serve(bearer(jwt, JSON.stringify(body)));
    assert.equal(res.status, 403);
    assert.equal(
      await errorOf(res),
      'agent "sales-bot" is not offered by this server; available: front-desk',
    );
  }
});

const serverDecides: Array<[string, unknown, RegExp]> = [
  [
    "roomName",
    { roomName: "support_42" },
    /roomName is not accepted: the server creates a new room/,
  ],
  ["room_name", { room_name: "lobby" }, /room_name is not accepted: the server creates a new room/],
  [
    "participant_identity",
    { participant_identity: "admin" },
    /the identity comes from your sign-in/,
  ],
  ["participantIdentity", { participantIdentity: "admin" }, /participantIdentity is not accepted/],
  ["participant_metadata", { participant_metadata: "{}" }, /metadata is set by the server/],
  [
    "participant_attributes",
    { participant_attributes: { a: "b" } },
    /attributes are set by the server/,
  ],
  [
    "room_config.max_participants",
    { room_config: { max_participants: 50 } },
    /"max_participants" is not accepted: the room's limits are set by the server/,
  ],
  [
    "room_config.emptyTimeout",
    { roomConfig: { emptyTimeout: 99999 } },
    /"emptyTimeout" is not accepted/,
  ],
  ["agent metadata", {
    room_config: { agents: [{ agent_name: "voicefleet-demo", metadata: "x" }] },
  }, /field "metadata" is not accepted: only agent_name is/],
  [
    "two agents",
    { room_config: { agents: [{ agent_name: "a" }, { agent_name: "b" }] } },
    /at most one agent/,
  ],
  ["conflicting agents", {
    agentName: "voicefleet-demo",
    room_config: { agents: [{ agent_name: "other" }] },
  }, /name different agents/],
];

for (const [label, body, expected] of serverDecides) {
  Deno.test(`the server decides: ${label} in the request gets 400`, async () => {
    const res = await handler()(bearer(await userJwt(), JSON.stringify(body)));
    assert.equal(res.status, 400);
    assert.match(await errorOf(res), expected);
  });
}

const tooBig = JSON.stringify({ agentName: "a" }).replace("}", `,"x":"${"y".repeat(5000)}"}`);

const badInputs: Array<{ name: string; body: BodyInit; type?: string; error: RegExp }> = [
  { name: "truncated JSON", body: '{"agentName": ', error: /not valid JSON/ },
  { name: "a JSON array", body: "[]", error: /must be a JSON object/ },
  { name: "a JSON string", body: '"voice"', error: /must be a JSON object/ },
  { name: "JSON null", body: "null", error: /must be a JSON object/ },
  { name: "agentName as a number", body: '{"agentName": 7}', error: /agentName must be a string/ },
  { name: "agentName null", body: '{"agentName": null}', error: /agentName must be a string/ },
  {
    name: "empty agentName",
    body: '{"agentName": ""}',
    error: /agentName must be 1-64 characters/,
  },
  { name: "agentName with a dot", body: '{"agentName": "agent.v2"}', error: /must be 1-64/ },
  {
    name: "agentName of 65 characters",
    body: JSON.stringify({ agentName: "a".repeat(65) }),
    error: /agentName must be 1-64/,
  },
  {
    name: "room_config not an object",
    body: '{"room_config": []}',
    error: /must be a JSON object/,
  },
  { name: "agents not a list", body: '{"room_config": {"agents": 1}}', error: /must be a list/ },
  {
    name: "an agent that is not an object",
    body: '{"room_config": {"agents": ["x"]}}',
    error: /agents\[0\] must be a JSON object/,
  },
  {
    name: "a control character in participant_name",
    body: '{"participant_name": "a\\u0000b"}',
    error: /participant_name must be 1-64 characters without control characters/,
  },
  {
    name: "the same field in two spellings",
    body: '{"participant_name": "a", "participantName": "b"}',
    error: /given twice/,
  },
  { name: "a misspelt field", body: '{"agent": "x"}', error: /unknown field "agent"/ },
  { name: "__proto__", body: '{"__proto__": {"x": 1}}', error: /unknown field "__proto__"/ },
  { name: "a body over 4 KiB", body: tooBig, error: /too large: the limit is 4096 bytes/ },
  {
    name: "form encoding",
    body: "agentName=x",
    type: "application/x-www-form-urlencoded",
    error: /Content-Type must be application\/json/,
  },
  {
    name: "bytes that are not UTF-8",
    body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    error: /not valid UTF-8/,
  },
];

for (const input of badInputs) {
  Deno.test(`bad input: ${input.name} gets 400`, async () => {
    const headers: Record<string, string> = { authorization: `Bearer ${await userJwt()}` };
    if (input.type) headers["content-type"] = input.type;
    const res = await handler()(post(input.body, headers));
    assert.equal(res.status, 400);
    assert.match(await errorOf(res), input.error);
  });
}

Deno.test("a streamed body over 4 KiB without Content-Length gets 400", async () => {
  const chunk = new TextEncoder().encode(" ".repeat(1024));
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ < 10) controller.enqueue(chunk);
      else controller.close();
    },
  });
  const res = await handler()(bearer(await userJwt(), stream));
  assert.equal(res.status, 400);
  assert.match(await errorOf(res), /too large/);
  assert.ok(sent <= 6, `stopped reading early, read ${sent} chunks`);
});

Deno.test("a body stream that breaks gets 400, not 500", async () => {
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.error(new Error("connection reset"));
    },
  });
  const res = await handler()(bearer(await userJwt(), stream));
  assert.equal(res.status, 400);
  assert.match(await errorOf(res), /could not be read/);
});

Deno.test("TOKEN_TTL_SECONDS sets the lifetime and is capped at 15 minutes", async () => {
  for (const [setting, expected] of [["60", 60], ["900", 900], ["86400", 900]] as const) {
    const body = await issue(
      await handler({ TOKEN_TTL_SECONDS: setting })(bearer(await userJwt())),
    );
    const claims = await verify(body.participantToken);
    assert.equal(claims.exp! - claims.nbf!, expected, `TOKEN_TTL_SECONDS=${setting}`);
  }
});

Deno.test("CORS: with no origins configured, cross-origin pages are refused", async () => {
  const serve = handler();
  const page = { origin: "http://127.0.0.1:5173" };
  const res = await serve(post(undefined, { ...page, authorization: `Bearer ${await userJwt()}` }));
  assert.equal(res.status, 403);
  assert.match(
    await errorOf(res),
    /origin "http:\/\/127.0.0.1:5173" may not request tokens.*CORS_ALLOWED_ORIGINS is empty/,
  );
  assert.equal(res.headers.get("access-control-allow-origin"), null);

  const preflight = await serve(
    new Request(ENDPOINT, {
      method: "OPTIONS",
      headers: { ...page, "access-control-request-method": "POST" },
    }),
  );
  assert.equal(preflight.status, 403);
  assert.equal(preflight.headers.get("access-control-allow-origin"), null);
  await preflight.body?.cancel();
});

Deno.test("CORS: a listed origin is echoed; others are refused", async () => {
  const serve = handler({
    CORS_ALLOWED_ORIGINS: "https://app.voicefleet.test, http://localhost:5173",
  });
  const jwt = await userJwt();
  const listed = await serve(
    post(undefined, { origin: "http://localhost:5173", authorization: `Bearer ${jwt}` }),
  );
  assert.equal(listed.status, 200);
  assert.equal(listed.headers.get("access-control-allow-origin"), "http://localhost:5173");
  assert.equal(listed.headers.get("vary"), "Origin");
  await listed.body?.cancel();

  const other = await serve(
    post(undefined, { origin: "https://evil.test", authorization: `Bearer ${jwt}` }),
  );
  assert.equal(other.status, 403);
  assert.match(await errorOf(other), /not listed in CORS_ALLOWED_ORIGINS/);
  assert.equal(other.headers.get("access-control-allow-origin"), null);
});

Deno.test("CORS preflight of a listed origin answers 204 with the allowed headers", async () => {
  const serve = handler({ CORS_ALLOWED_ORIGINS: "http://localhost:5173" });
  const res = await serve(
    new Request(ENDPOINT, {
      method: "OPTIONS",
      headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" },
    }),
  );
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), "http://localhost:5173");
  assert.equal(res.headers.get("access-control-allow-methods"), "POST, OPTIONS");
  const allowed = res.headers.get("access-control-allow-headers")?.split(",").map((h) => h.trim());
  assert.deepEqual(allowed?.sort(), ["apikey", "authorization", "content-type", "x-client-info"]);
  assert.equal(res.headers.get("access-control-expose-headers"), "Retry-After");
  assert.equal(await res.text(), "");
});

Deno.test("CORS: requests without Origin and same-origin pages need no listing", async () => {
  const serve = handler();
  const jwt = await userJwt();
  await issue(await serve(bearer(jwt)));
  const same = await serve(
    post(undefined, { origin: new URL(ENDPOINT).origin, authorization: `Bearer ${jwt}` }),
  );
  assert.equal(same.status, 200);
  await same.body?.cancel();
});

Deno.test("error responses carry CORS headers so a listed page can read the message", async () => {
  const serve = handler({ CORS_ALLOWED_ORIGINS: "http://localhost:5173" });
  const res = await serve(
    post("nope", { origin: "http://localhost:5173", authorization: `Bearer ${await userJwt()}` }),
  );
  assert.equal(res.status, 400);
  assert.equal(res.headers.get("access-control-allow-origin"), "http://localhost:5173");
  assert.match(await errorOf(res), /not valid JSON/);
});

Deno.test("token responses are JSON that no cache may keep", async () => {
  const res = await handler()(bearer(await userJwt()));
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(res.headers.get("cache-control"), "no-store");
  await res.body?.cancel();
});

Deno.test("methods other than POST and OPTIONS get 405 with Allow", async () => {
  const serve = handler();
  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    const res = await serve(new Request(ENDPOINT, { method }));
    assert.equal(res.status, 405, method);
    assert.equal(res.headers.get("allow"), "POST, OPTIONS");
    assert.match(await errorOf(res), new RegExp(`method ${method} is not allowed`));
  }
});

Deno.test("missing LiveKit settings give 500 naming each variable, never a value", async () => {
  for (const name of ["LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"]) {
    const res = await createHandler(config({ [name]: undefined }))(bearer(await userJwt()));
    assert.equal(res.status, 500, name);
    const text = await res.text();
    assert.match(text, new RegExp(`${name} is not set`));
    for (const secret of [API_SECRET, API_KEY, JWT_SECRET]) assert.ok(!text.includes(secret));
  }
});

Deno.test("invalid settings give 500 naming the variable without echoing it", async () => {
  const cases: Array<[string, string]> = [
    ["LIVEKIT_URL", "livekit.internal:7880"],
    ["TOKEN_TTL_SECONDS", "ten-minutes"],
    ["ALLOW_GUESTS", "sometimes"],
    ["LIVEKIT_AGENT_NAME", "agent name with spaces"],
    ["LIVEKIT_AGENT_NAMES", "good,bad name"],
    ["CORS_ALLOWED_ORIGINS", "https://app.voicefleet.test/path"],
    ["SUPABASE_URL", "project.supabase.co"],
    ["SUPABASE_JWKS_URL", "file:///etc/keys"],
    ["ROOM_MAX_PARTICIPANTS", "1"],
    ["RATE_LIMIT_PER_ADDRESS", "-5"],
    ["RATE_LIMIT_WINDOW_SECONDS", "0"],
    ["MAX_CONCURRENT_CALLS", "many"],
    ["TRUST_PROXY", "yes"],
    ["CLIENT_IP_HEADER", "x forwarded"],
  ];
  for (const [name, bad] of cases) {
    const res = await createHandler(config({ [name]: bad }))(bearer(await userJwt()));
    assert.equal(res.status, 500, name);
    const message = await errorOf(res);
    assert.match(message, new RegExp(name));
    assert.ok(!message.includes(bad), `${name} value leaked: ${message}`);
  }
});

Deno.test("CORS_ALLOWED_ORIGINS takes a page's root URL as its origin", () => {
  const cfg = config({ CORS_ALLOWED_ORIGINS: "http://127.0.0.1:5173/, https://app.test" });
  assert.deepEqual(cfg.problems, []);
  assert.deepEqual(cfg.corsAllowedOrigins, ["http://127.0.0.1:5173", "https://app.test"]);
});

Deno.test('CORS_ALLOWED_ORIGINS refuses "*": origins must be listed', () => {
  const cfg = config({ CORS_ALLOWED_ORIGINS: "*" });
  assert.match(cfg.problems.join(), /does not accept "\*"/);
  assert.equal(cfg.livekit, null);
});

Deno.test("guests off and no key to verify users is a configuration error", () => {
  const cfg = config({ SUPABASE_JWT_SECRET: undefined });
  assert.match(cfg.problems.join(), /ALLOW_GUESTS is false but no key verifies users/);
  assert.deepEqual(config({ SUPABASE_JWT_SECRET: undefined, ALLOW_GUESTS: "true" }).problems, []);
});

Deno.test("a bearer token when no key is configured gives 500 naming the variables", async () => {
  const serve = createHandler(config({ SUPABASE_JWT_SECRET: undefined, ALLOW_GUESTS: "true" }));
  const res = await serve(bearer(await userJwt()));
  assert.equal(res.status, 500);
  assert.match(await errorOf(res), /set SUPABASE_URL, SUPABASE_JWKS_URL or SUPABASE_JWT_SECRET/);
});

Deno.test("loadConfig applies the documented defaults", () => {
  const cfg = loadConfig(BASE_ENV);
  assert.deepEqual(cfg.problems, []);
  assert.equal(cfg.allowGuests, false);
  assert.deepEqual(cfg.agentNames, ["voicefleet-demo"]);
  assert.equal(cfg.tokenTtlSeconds, 600);
  assert.deepEqual(cfg.corsAllowedOrigins, []);
  assert.deepEqual(cfg.room, {
    maxCallers: 1,
    maxParticipants: 3,
    emptyTimeoutSeconds: 60,
    departureTimeoutSeconds: 10,
  });
  assert.deepEqual(cfg.invites, { ttlSeconds: 300, secret: null });
  assert.deepEqual(cfg.limits, {
    windowSeconds: 60,
    perIdentity: 10,
    perAddress: 30,
    concurrentCalls: 3,
    callSlotSeconds: 600,
  });
  assert.deepEqual(cfg.proxy, { trustedHops: 0, header: "x-forwarded-for" });
  assert.deepEqual(cfg.auth, {
    jwtSecret: JWT_SECRET,
    jwksUrl: null,
    issuer: BASE_ENV.SUPABASE_JWT_ISSUER,
    audience: "authenticated",
  });
  assert.deepEqual(cfg.livekit, {
    url: "ws://127.0.0.1:7880",
    apiKey: API_KEY,
    apiSecret: API_SECRET,
  });
});

Deno.test("SUPABASE_URL gives the key set and the issuer; explicit variables win", () => {
  const derived = loadConfig({
    ...BASE_ENV,
    SUPABASE_JWT_ISSUER: undefined,
    SUPABASE_URL: "https://abc.supabase.co/",
  });
  assert.equal(derived.auth.jwksUrl, "https://abc.supabase.co/auth/v1/.well-known/jwks.json");
  assert.equal(derived.auth.issuer, "https://abc.supabase.co/auth/v1");
  const explicit = loadConfig({
    ...BASE_ENV,
    SUPABASE_URL: "http://kong:8000",
    SUPABASE_JWKS_URL: "http://127.0.0.1:54321/auth/v1/.well-known/jwks.json",
    SUPABASE_JWT_ISSUER: "http://127.0.0.1:54321/auth/v1",
    SUPABASE_JWT_AUDIENCE: "voice",
  });
  assert.equal(explicit.auth.jwksUrl, "http://127.0.0.1:54321/auth/v1/.well-known/jwks.json");
  assert.equal(explicit.auth.issuer, "http://127.0.0.1:54321/auth/v1");
  assert.equal(explicit.auth.audience, "voice");
});

Deno.test("the keyless demo: guests on, one agent, its page's origin", async () => {
  // What devstack's demo sets: no Supabase at all.
  const serve = createHandler(loadConfig({
    LIVEKIT_URL: "ws://127.0.0.1:7880",
    LIVEKIT_API_KEY: API_KEY,
    LIVEKIT_API_SECRET: API_SECRET,
    LIVEKIT_AGENT_NAME: "vf-demo",
    ALLOW_GUESTS: "true",
    CORS_ALLOWED_ORIGINS: "http://127.0.0.1:5173",
  }));
  const res = await serve(
    post(JSON.stringify({ agentName: "vf-demo" }), { origin: "http://127.0.0.1:5173" }),
    from("127.0.0.1"),
  );
  const body = await issue(res);
  assert.deepEqual(dispatchedAgents(await verify(body.participantToken)), ["vf-demo"]);
});

Deno.test("over real HTTP: preflight, token, an oversized body, and the caller's address", async () => {
  const cfg = config({
    CORS_ALLOWED_ORIGINS: "http://localhost:5173",
    RATE_LIMIT_PER_ADDRESS: "2",
  });
  const serve = createHandler(cfg);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req, info) => serve(req, info),
  );
  const url = `http://127.0.0.1:${server.addr.port}/functions/v1/livekit-token`;
  const headers = {
    "content-type": "application/json",
    authorization: `Bearer ${await userJwt()}`,
  };
  try {
    const options = await fetch(url, {
      method: "OPTIONS",
      headers: { origin: "http://localhost:5173" },
    });
    assert.equal(options.status, 204);
    await options.body?.cancel();

    const ok = await fetch(url, { method: "POST", headers, body: "{}" });
    const body = await issue(ok);
    assert.deepEqual(dispatchedAgents(await verify(body.participantToken)), ["voicefleet-demo"]);

    const big = await fetch(url, { method: "POST", headers, body: tooBig });
    assert.equal(big.status, 400);
    assert.match(await errorOf(big), /too large/);

    // Preflights are free; the third POST from 127.0.0.1 is over its address's limit of 2.
    const limited = await fetch(url, { method: "POST", headers, body: "{}" });
    assert.equal(limited.status, 429);
    assert.match(await errorOf(limited), /from your network address/);
  } finally {
    await server.shutdown();
  }
});
