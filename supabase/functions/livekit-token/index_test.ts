import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { RoomConfiguration, TokenVerifier } from "livekit-server-sdk";
import type { ClaimGrants } from "livekit-server-sdk";
import { type Config, handleRequest, loadConfig, type TokenResponse } from "./index.ts";

const API_KEY = "vf-test-key";
const API_SECRET = "vf-test-secret-0123456789abcdef0123456789abcdef";
const JWT_SECRET = "supabase-jwt-secret-for-tests-0123456789abcdef";
const ENDPOINT = "http://127.0.0.1:54321/functions/v1/livekit-token";

const BASE_ENV = {
  LIVEKIT_URL: "ws://127.0.0.1:7880",
  LIVEKIT_API_KEY: API_KEY,
  LIVEKIT_API_SECRET: API_SECRET,
  SUPABASE_JWT_SECRET: JWT_SECRET,
};

function config(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({ ...BASE_ENV, ...overrides });
}

function post(body?: BodyInit, headers: Record<string, string> = {}): Request {
  const withType = body === undefined
    ? headers
    : { "content-type": "application/json", ...headers };
  return new Request(ENDPOINT, { method: "POST", body, headers: withType });
}

async function userJwt(claims: Record<string, unknown>, expiresIn = "1h", secret = JWT_SECRET) {
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

async function issue(req: Request, cfg = config()): Promise<TokenResponse> {
  const res = await handleRequest(req, cfg);
  assert.equal(res.status, 200, await res.clone().text());
  return await res.json() as TokenResponse;
}

async function verify(token: string): Promise<ClaimGrants> {
  return await new TokenVerifier(API_KEY, API_SECRET).verify(token);
}

function dispatchedAgents(claims: ClaimGrants): string[] {
  // The JWT carries the protobuf JSON form; parse it back through the SDK's own type.
  const roomConfig = RoomConfiguration.fromJson(claims.roomConfig as never);
  return roomConfig.agents.map((agent) => agent.agentName);
}

async function errorOf(res: Response): Promise<string> {
  const body = await res.json() as { error?: unknown };
  assert.equal(typeof body.error, "string");
  return body.error as string;
}

Deno.test("a guest gets a token for a generated room that dispatches the default agent", async () => {
  const body = await issue(post());
  assert.equal(body.serverUrl, "ws://127.0.0.1:7880");
  assert.match(body.roomName, /^voice-[0-9a-f]{16}$/);
  assert.match(body.participantName, /^guest-[0-9a-f]{16}$/);

  const claims = await verify(body.participantToken);
  assert.equal(claims.sub, body.participantName);
  assert.deepEqual(claims.video, {
    roomJoin: true,
    room: body.roomName,
    canPublish: true,
    canSubscribe: true,
    canPublishData: true,
  });
  assert.deepEqual(dispatchedAgents(claims), ["voicefleet-demo"]);
  assert.equal(claims.exp! - claims.nbf!, 600);
  assert.equal(body.expiresAt, new Date(claims.exp! * 1000).toISOString());
});

Deno.test("two guests get different identities and rooms", async () => {
  const [a, b] = await Promise.all([issue(post()), issue(post())]);
  assert.notEqual(a.participantName, b.participantName);
  assert.notEqual(a.roomName, b.roomName);
});

Deno.test("the body chooses the room and the agent", async () => {
  const body = await issue(
    post(JSON.stringify({ roomName: "support_42", agentName: "sales-bot" })),
  );
  assert.equal(body.roomName, "support_42");
  const claims = await verify(body.participantToken);
  assert.equal(claims.video?.room, "support_42");
  assert.deepEqual(dispatchedAgents(claims), ["sales-bot"]);
});

Deno.test("LIVEKIT_AGENT_NAME sets the agent when the body names none", async () => {
  const body = await issue(post("{}"), config({ LIVEKIT_AGENT_NAME: "front-desk" }));
  assert.deepEqual(dispatchedAgents(await verify(body.participantToken)), ["front-desk"]);
});

Deno.test("a signed-in Supabase user is identified by the JWT subject", async () => {
  const sub = "5b0c7c8e-1d2f-4a3b-9c8d-7e6f5a4b3c2d";
  const jwt = await userJwt({ sub, role: "authenticated" });
  const body = await issue(post("{}", { authorization: `Bearer ${jwt}` }));
  assert.equal(body.participantName, sub);
  const claims = await verify(body.participantToken);
  assert.equal(claims.sub, sub);
  assert.equal(claims.name, sub);
});

Deno.test("a user is accepted even when guests are not", async () => {
  const jwt = await userJwt({ sub: "user-1", role: "authenticated" });
  const req = post(undefined, { authorization: `Bearer ${jwt}` });
  const body = await issue(req, config({ ALLOW_GUESTS: "false" }));
  assert.equal(body.participantName, "user-1");
});

Deno.test("AUTH_JWT_SECRET verifies users where SUPABASE_ names are reserved", async () => {
  const cfg = config({ SUPABASE_JWT_SECRET: undefined, AUTH_JWT_SECRET: JWT_SECRET });
  const jwt = await userJwt({ sub: "user-2" });
  const body = await issue(post(undefined, { authorization: `Bearer ${jwt}` }), cfg);
  assert.equal(body.participantName, "user-2");
});

Deno.test("the project's anon key (a valid JWT without a subject) counts as a guest", async () => {
  const anon = await userJwt({ role: "anon" });
  const body = await issue(post(undefined, { authorization: `Bearer ${anon}` }));
  assert.match(body.participantName, /^guest-/);
});

Deno.test("guests get 401 when ALLOW_GUESTS is false", async () => {
  const res = await handleRequest(post(), config({ ALLOW_GUESTS: "false" }));
  assert.equal(res.status, 401);
  assert.match(await errorOf(res), /sign-in required/);
  assert.equal(res.headers.get("www-authenticate"), "Bearer");
});

const badTokens: Array<[string, () => Promise<string>, RegExp]> = [
  ["expired", () => userJwt({ sub: "u" }, "-1m"), /expired/],
  ["signed with another secret", () => userJwt({ sub: "u" }, "1h", "x".repeat(40)), /invalid/],
  ["not a JWT", () => Promise.resolve("not-a-jwt"), /invalid/],
  ["unsigned", () => Promise.resolve(unsignedJwt()), /invalid/],
];

function unsignedJwt(): string {
  const part = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, "");
  return `${part({ alg: "none" })}.${part({ sub: "intruder", exp: 9999999999 })}.`;
}

for (const [label, make, expected] of badTokens) {
  Deno.test(`a bearer token that is ${label} gets 401`, async () => {
    const res = await handleRequest(
      post(undefined, { authorization: `Bearer ${await make()}` }),
      config(),
    );
    assert.equal(res.status, 401);
    assert.match(await errorOf(res), expected);
    assert.match(res.headers.get("www-authenticate") ?? "", /invalid_token/);
  });
}

Deno.test("an Authorization header that is not a bearer token gets 401", async () => {
  const res = await handleRequest(
    post(undefined, { authorization: "Basic dXNlcjpwYXNz" }),
    config(),
  );
  assert.equal(res.status, 401);
  assert.match(await errorOf(res), /Bearer <token>/);
});

Deno.test("TOKEN_TTL_SECONDS sets the lifetime and is capped at 15 minutes", async () => {
  for (const [setting, expected] of [["60", 60], ["900", 900], ["86400", 900]] as const) {
    const body = await issue(post(), config({ TOKEN_TTL_SECONDS: setting }));
    const claims = await verify(body.participantToken);
    assert.equal(claims.exp! - claims.nbf!, expected, `TOKEN_TTL_SECONDS=${setting}`);
  }
});

const tooBig = JSON.stringify({ roomName: "r", agentName: "a" }).replace(
  "}",
  `,"x":"${"y".repeat(5000)}"}`,
);

const badInputs: Array<{ name: string; body: BodyInit; type?: string; error: RegExp }> = [
  { name: "truncated JSON", body: '{"agentName": ', error: /not valid JSON/ },
  { name: "a JSON array", body: "[]", error: /must be a JSON object/ },
  { name: "a JSON string", body: '"voice"', error: /must be a JSON object/ },
  { name: "JSON null", body: "null", error: /must be a JSON object/ },
  { name: "agentName as a number", body: '{"agentName": 7}', error: /agentName must be a string/ },
  { name: "roomName as a boolean", body: '{"roomName": true}', error: /roomName must be a string/ },
  { name: "roomName null", body: '{"roomName": null}', error: /roomName must be a string/ },
  { name: "empty roomName", body: '{"roomName": ""}', error: /roomName must be 1-64 characters/ },
  {
    name: "roomName with a space",
    body: '{"roomName": "my room"}',
    error: /roomName must be 1-64/,
  },
  {
    name: "roomName with a path",
    body: '{"roomName": "../admin"}',
    error: /roomName must be 1-64/,
  },
  {
    name: "roomName of 65 characters",
    body: JSON.stringify({ roomName: "r".repeat(65) }),
    error: /roomName must be 1-64/,
  },
  {
    name: "agentName with a dot",
    body: '{"agentName": "agent.v2"}',
    error: /agentName must be 1-64/,
  },
  { name: "a misspelt field", body: '{"room": "lobby"}', error: /unknown field "room"/ },
  { name: "a body over 4 KiB", body: tooBig, error: /too large: the limit is 4096 bytes/ },
  {
    name: "form encoding",
    body: "roomName=lobby",
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
    const req = post(input.body, input.type ? { "content-type": input.type } : {});
    const res = await handleRequest(req, config());
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
  const res = await handleRequest(post(stream), config());
  assert.equal(res.status, 400);
  assert.match(await errorOf(res), /too large/);
  assert.ok(sent <= 6, `stopped reading early, read ${sent} chunks`);
});

Deno.test("CORS preflight answers 204 with the allowed headers", async () => {
  const req = new Request(ENDPOINT, {
    method: "OPTIONS",
    headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" },
  });
  const res = await handleRequest(req, config());
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.equal(res.headers.get("access-control-allow-methods"), "POST, OPTIONS");
  const allowed = res.headers.get("access-control-allow-headers")?.split(",").map((h) => h.trim());
  assert.deepEqual(allowed?.sort(), ["apikey", "authorization", "content-type", "x-client-info"]);
  assert.equal(await res.text(), "");
});

Deno.test("CORS_ALLOWED_ORIGINS echoes listed origins only", async () => {
  const cfg = config({
    CORS_ALLOWED_ORIGINS: "https://app.voicefleet.test, http://localhost:5173",
  });
  const from = (origin: string) => handleRequest(post(undefined, { origin }), cfg);

  const listed = await from("http://localhost:5173");
  assert.equal(listed.status, 200);
  assert.equal(listed.headers.get("access-control-allow-origin"), "http://localhost:5173");
  assert.equal(listed.headers.get("vary"), "Origin");

  const other = await from("https://evil.test");
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  await other.body?.cancel();
});

Deno.test("error responses carry CORS headers so browsers can read the message", async () => {
  const res = await handleRequest(post("nope"), config());
  assert.equal(res.status, 400);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  await res.body?.cancel();
});

Deno.test("token responses are JSON that no cache may keep", async () => {
  const res = await handleRequest(post(), config());
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(res.headers.get("cache-control"), "no-store");
  await res.body?.cancel();
});

Deno.test("methods other than POST and OPTIONS get 405 with Allow", async () => {
  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    const res = await handleRequest(new Request(ENDPOINT, { method }), config());
    assert.equal(res.status, 405, method);
    assert.equal(res.headers.get("allow"), "POST, OPTIONS");
    assert.match(await errorOf(res), new RegExp(`method ${method} is not allowed`));
  }
});

Deno.test("missing LiveKit settings give 500 naming each variable, never a value", async () => {
  for (const name of ["LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"]) {
    const res = await handleRequest(post(), config({ [name]: undefined }));
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
    ["CORS_ALLOWED_ORIGINS", "https://app.voicefleet.test/path"],
  ];
  for (const [name, bad] of cases) {
    const res = await handleRequest(post(), config({ [name]: bad }));
    assert.equal(res.status, 500, name);
    const message = await errorOf(res);
    assert.match(message, new RegExp(name));
    assert.ok(!message.includes(bad), `${name} value leaked: ${message}`);
  }
});

Deno.test("a bearer token without SUPABASE_JWT_SECRET gives 500 naming it", async () => {
  const jwt = await userJwt({ sub: "u" });
  const req = post(undefined, { authorization: `Bearer ${jwt}` });
  const res = await handleRequest(req, config({ SUPABASE_JWT_SECRET: undefined }));
  assert.equal(res.status, 500);
  assert.match(await errorOf(res), /SUPABASE_JWT_SECRET \(or AUTH_JWT_SECRET\) is not set/);
});

Deno.test("loadConfig applies the documented defaults", () => {
  const cfg = loadConfig(BASE_ENV);
  assert.deepEqual(cfg.problems, []);
  assert.equal(cfg.allowGuests, true);
  assert.equal(cfg.defaultAgentName, "voicefleet-demo");
  assert.equal(cfg.tokenTtlSeconds, 600);
  assert.deepEqual(cfg.corsAllowedOrigins, ["*"]);
  assert.deepEqual(cfg.livekit, {
    url: "ws://127.0.0.1:7880",
    apiKey: API_KEY,
    apiSecret: API_SECRET,
  });
});

Deno.test("over real HTTP: preflight, token and an oversized body", async () => {
  const cfg = config();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => handleRequest(req, cfg),
  );
  const url = `http://127.0.0.1:${server.addr.port}/functions/v1/livekit-token`;
  try {
    const options = await fetch(url, { method: "OPTIONS" });
    assert.equal(options.status, 204);
    await options.body?.cancel();

    const ok = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(ok.status, 200);
    const body = await ok.json() as TokenResponse;
    assert.deepEqual(dispatchedAgents(await verify(body.participantToken)), ["voicefleet-demo"]);

    const big = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: tooBig,
    });
    assert.equal(big.status, 400);
    assert.match(await errorOf(big), /too large/);
  } finally {
    await server.shutdown();
  }
});
