import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { AccessToken } from "livekit-server-sdk";
import { createHandler, type InviteResponse } from "./index.ts";
import {
  API_KEY,
  API_SECRET,
  bearer,
  config,
  dispatchedAgents,
  errorOf,
  handler,
  issue,
  NO_LIMITS,
  post,
  roomConfigOf,
  USER,
  userJwt,
  verify,
} from "./testing.ts";

const FRIEND = "0e7d9c31-8a4b-4f2e-b6d1-2c3b4a5d6e7f";
const INVITES = { ROOM_MAX_CALLERS: "4" };

function body(fields: Record<string, unknown>): string {
  return JSON.stringify(fields);
}

async function inviteOf(res: Response): Promise<InviteResponse> {
  assert.equal(res.status, 200, await res.clone().text());
  return await res.json() as InviteResponse;
}

/** A call started by USER, and an invite to it. */
async function invited(serve = handler(INVITES)) {
  const call = await issue(await serve(bearer(await userJwt())));
  const invite = await inviteOf(
    await serve(bearer(await userJwt(), body({ invite_with_token: call.participantToken }))),
  );
  return { serve, call, invite };
}

Deno.test("a caller invites another signed-in user into the same room, without a second agent", async () => {
  const { serve, call, invite } = await invited();
  assert.equal(invite.roomName, call.roomName);
  assert.match(invite.inviteCode, /^v1\.[\w-]+\.[\w-]{43}$/);
  const lasts = Date.parse(invite.expiresAt) - Date.now();
  assert.ok(lasts > 290_000 && lasts <= 300_000, `${lasts} ms`);

  const friend = await userJwt({ sub: FRIEND });
  const joined = await issue(
    await serve(bearer(friend, body({ invite_code: invite.inviteCode, participant_name: "Bo" }))),
  );
  assert.equal(joined.roomName, call.roomName);
  assert.equal(joined.participantName, "Bo");
  const claims = await verify(joined.participantToken);
  assert.equal(claims.sub, FRIEND);
  // The same minimal grants as the caller who started the call, for that room only.
  assert.deepEqual(claims.video, (await verify(call.participantToken)).video);
  assert.deepEqual(dispatchedAgents(claims), []);
  // Were the call already over, a room this token creates still closes itself.
  const room = roomConfigOf(claims);
  assert.deepEqual([room.maxParticipants, room.emptyTimeout, room.departureTimeout], [6, 60, 10]);
  // The invited caller may invite someone else in turn, with their own token.
  const again = await inviteOf(
    await serve(bearer(friend, body({ inviteWithToken: joined.participantToken }))),
  );
  assert.equal(again.roomName, call.roomName);
  assert.notEqual(again.inviteCode, invite.inviteCode);
});

Deno.test("the camelCase names work too, and each invite is a new code", async () => {
  const { serve, call, invite } = await invited();
  const second = await inviteOf(
    await serve(bearer(await userJwt(), body({ inviteWithToken: call.participantToken }))),
  );
  assert.notEqual(second.inviteCode, invite.inviteCode);
  const joined = await issue(
    await serve(bearer(await userJwt({ sub: FRIEND }), body({ inviteCode: second.inviteCode }))),
  );
  assert.equal(joined.roomName, call.roomName);
  assert.equal(joined.participantName, FRIEND);
});

Deno.test("invites are off while a room holds one caller", async () => {
  const serve = handler();
  const call = await issue(await serve(bearer(await userJwt())));
  const asked = await serve(
    bearer(await userJwt(), body({ invite_with_token: call.participantToken })),
  );
  assert.equal(asked.status, 403);
  assert.match(await errorOf(asked), /invites are off.*ROOM_MAX_CALLERS/);
  const { invite } = await invited();
  const used = await serve(
    bearer(await userJwt({ sub: FRIEND }), body({ invite_code: invite.inviteCode })),
  );
  assert.equal(used.status, 403);
  assert.match(await errorOf(used), /invites are off/);
});

Deno.test("a code names one room: altered, forged or another server's codes are refused", async () => {
  const { serve, invite } = await invited();
  const friend = await userJwt({ sub: FRIEND });
  const [version, payload, signature] = invite.inviteCode.split(".");
  const fields = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
  const moved = btoa(JSON.stringify({ ...fields, r: "voice-0000000000000000" }))
    .replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const flipped = signature.slice(0, -2) + (signature.endsWith("AA") ? "BA" : "AA");
  for (const code of [`${version}.${moved}.${signature}`, `${version}.${payload}.${flipped}`]) {
    const res = await serve(bearer(friend, body({ invite_code: code })));
    assert.equal(res.status, 403, code);
    assert.match(await errorOf(res), /invite code is not valid on this server/);
  }
  // Signed under another secret: another deployment's code, or one from before a rotation.
  const rotated = handler({ ...INVITES, INVITE_SECRET: "r".repeat(32) });
  const res = await rotated(bearer(friend, body({ invite_code: invite.inviteCode })));
  assert.equal(res.status, 403);
  assert.match(await errorOf(res), /not valid on this server/);
  const own = await invited(rotated);
  const joined = await rotated(bearer(friend, body({ invite_code: own.invite.inviteCode })));
  assert.equal((await issue(joined)).roomName, own.call.roomName);
});

Deno.test("malformed codes are one clear 400", async () => {
  const { serve, call } = await invited();
  const friend = await userJwt({ sub: FRIEND });
  const cases: Array<[unknown, RegExp]> = [
    [42, /invite_code must be a non-empty string/],
    ["  ", /invite_code must be a non-empty string/],
    ["hello", /not an invite code/],
    ["v1.a.b", /not an invite code/],
    // A participant token is not an invite code.
    [call.participantToken, /not an invite code/],
    [`v1.${"a".repeat(600)}.${"b".repeat(43)}`, /not an invite code/],
  ];
  for (const [code, error] of cases) {
    const res = await serve(bearer(friend, body({ invite_code: code })));
    assert.equal(res.status, 400, String(code));
    assert.match(await errorOf(res), error);
  }
});

Deno.test("a code expires after INVITE_TTL_SECONDS", async () => {
  let now = Date.now();
  const cfg = config({ ...NO_LIMITS, ...INVITES, INVITE_TTL_SECONDS: "60" });
  const serve = createHandler(cfg, { now: () => now });
  const { invite } = await invited(serve);
  assert.equal(Date.parse(invite.expiresAt), Math.floor(now / 1000) * 1000 + 60_000);
  const friend = await userJwt({ sub: FRIEND });
  now += 59_000;
  await issue(await serve(bearer(friend, body({ invite_code: invite.inviteCode }))));
  now += 2_000;
  const late = await serve(bearer(friend, body({ invite_code: invite.inviteCode })));
  assert.equal(late.status, 403);
  assert.match(await errorOf(late), /invite code has expired: ask .* for a new invite/);
});

Deno.test("only the holder of a room's token may invite to it", async () => {
  const serve = handler(INVITES);
  const call = await issue(await serve(bearer(await userJwt())));
  const ask = async (jwt: string, token: unknown) =>
    await serve(bearer(jwt, body({ invite_with_token: token })));

  const stolen = await ask(await userJwt({ sub: FRIEND }), call.participantToken);
  assert.equal(stolen.status, 403);
  assert.match(await errorOf(stolen), /belongs to another participant/);

  const foreign = await new AccessToken(API_KEY, "another-secret-0123456789abcdef0123", {
    identity: USER,
  });
  foreign.addGrant({ roomJoin: true, room: call.roomName });
  const forged = await ask(await userJwt(), await foreign.toJwt());
  assert.equal(forged.status, 403);
  assert.match(await errorOf(forged), /not a valid participant token of this server/);

  const expired = await new SignJWT({ video: { roomJoin: true, room: call.roomName } })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(API_KEY)
    .setSubject(USER)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
    .sign(new TextEncoder().encode(API_SECRET));
  assert.equal((await ask(await userJwt(), expired)).status, 403);

  const noRoom = new AccessToken(API_KEY, API_SECRET, { identity: USER });
  noRoom.addGrant({ roomList: true });
  const listing = await ask(await userJwt(), await noRoom.toJwt());
  assert.equal(listing.status, 403);
  assert.match(await errorOf(listing), /does not let you join a room/);

  const { invite } = await invited(serve);
  const code = await ask(await userJwt(), invite.inviteCode);
  assert.equal(code.status, 403);
  for (const bad of [7, ""]) {
    const res = await ask(await userJwt(), bad);
    assert.equal(res.status, 400);
    assert.match(await errorOf(res), /invite_with_token must be a non-empty string/);
  }
});

Deno.test("an invite request takes no other field; a join by invite names no agent", async () => {
  const { serve, call, invite } = await invited();
  const jwt = await userJwt({ sub: FRIEND });
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [
      { invite_with_token: call.participantToken, agentName: "voicefleet-demo" },
      /takes no other field/,
    ],
    [{ invite_with_token: call.participantToken, participant_name: "Bo" }, /no other field/],
    [{ invite_code: invite.inviteCode, agentName: "voicefleet-demo" }, /not accepted with it/],
    [{ invite_code: invite.inviteCode, room_config: { agents: [] } }, /not accepted with it/],
    [{ invite_code: invite.inviteCode, room_name: call.roomName }, /room_name is not accepted/],
  ];
  for (const [fields, error] of cases) {
    const res = await serve(bearer(jwt, body(fields)));
    assert.equal(res.status, 400, JSON.stringify(fields));
    assert.match(await errorOf(res), error);
  }
});

Deno.test("a caller's own invite does not let them join twice", async () => {
  const { serve, invite } = await invited();
  const res = await serve(bearer(await userJwt(), body({ invite_code: invite.inviteCode })));
  assert.equal(res.status, 409);
  assert.match(await errorOf(res), /this invite is your own/);
});

Deno.test("guests: never inviting; joining by invite only where guests may call", async () => {
  const { invite } = await invited();
  const closed = handler(INVITES);
  const refused = await closed(post(body({ invite_code: invite.inviteCode })));
  assert.equal(refused.status, 401);
  assert.match(await errorOf(refused), /sign-in required/);

  const open = handler({ ...INVITES, ALLOW_GUESTS: "true" });
  const guest = await issue(await open(post()));
  const asked = await open(post(body({ invite_with_token: guest.participantToken })));
  assert.equal(asked.status, 403);
  assert.match(await errorOf(asked), /guests cannot invite/);
  const joined = await issue(await open(post(body({ invite_code: invite.inviteCode }))));
  assert.equal(joined.roomName, invite.roomName);
  assert.match(joined.participantName, /^guest-/);
});

Deno.test("limits apply: asking counts toward the user's rate, joining holds a call slot", async () => {
  const rated = handler({ ...INVITES, RATE_LIMIT_PER_IDENTITY: "1" });
  const call = await issue(await rated(bearer(await userJwt())));
  const asked = await rated(
    bearer(await userJwt(), body({ invite_with_token: call.participantToken })),
  );
  assert.equal(asked.status, 429);
  assert.match(await errorOf(asked), /too many token requests for this user/);

  const slots = handler({ ...INVITES, MAX_CONCURRENT_CALLS: "1" });
  const { invite } = await invited(slots);
  const friend = await userJwt({ sub: FRIEND });
  await issue(await slots(bearer(friend)));
  const busy = await slots(bearer(friend, body({ invite_code: invite.inviteCode })));
  assert.equal(busy.status, 429);
  assert.match(await errorOf(busy), /too many calls at once/);
});

Deno.test("invite settings: seats follow the callers, bad values are named", () => {
  const cfg = config({ ROOM_MAX_CALLERS: "4", INVITE_TTL_SECONDS: "5000" });
  assert.deepEqual(cfg.problems, []);
  assert.equal(cfg.room.maxCallers, 4);
  assert.equal(cfg.room.maxParticipants, 6);
  assert.equal(cfg.invites.ttlSeconds, 900);
  const explicit = config({ ROOM_MAX_CALLERS: "4", ROOM_MAX_PARTICIPANTS: "5" });
  assert.deepEqual([explicit.problems, explicit.room.maxParticipants], [[], 5]);

  const bad = config({
    ROOM_MAX_CALLERS: "4",
    ROOM_MAX_PARTICIPANTS: "4",
    INVITE_SECRET: "short",
    INVITE_TTL_SECONDS: "0",
  });
  assert.deepEqual(bad.problems, [
    "ROOM_MAX_PARTICIPANTS must leave a seat for the agent: at least ROOM_MAX_CALLERS + 1 (5)",
    "INVITE_TTL_SECONDS must be a whole number, at least 1",
    "INVITE_SECRET must be at least 32 characters",
  ]);
  assert.equal(bad.livekit, null);
  assert.deepEqual(config({ ROOM_MAX_CALLERS: "0" }).problems, [
    "ROOM_MAX_CALLERS must be a whole number, at least 1",
  ]);
  // The secret is never echoed, even when refused.
  assert.ok(!bad.problems.join(" ").includes("short"));
});
