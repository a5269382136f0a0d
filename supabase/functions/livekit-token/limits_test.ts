/** Rate limits, concurrent-call caps and the caller's address; a test clock replaces sleeping. */

import assert from "node:assert/strict";
import { bucket, clientAddress } from "./address.ts";
import { createHandler, type LimitStore, MemoryLimitStore } from "./index.ts";
import { bearer, config, errorOf, from, issue, post, userJwt } from "./testing.ts";

/** A clock the test moves by hand. */
class TestClock {
  // Real time to start with: the test tokens are signed with it and live for an hour.
  ms = Date.now();
  readonly now = () => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

function limited(env: Record<string, string>, clock: TestClock, store?: LimitStore) {
  const cfg = config(env);
  assert.deepEqual(cfg.problems, []);
  return createHandler(cfg, { now: clock.now, store });
}

async function tooMany(res: Response, message: RegExp, retryAfter: number): Promise<void> {
  assert.equal(res.status, 429);
  assert.match(await errorOf(res), message);
  assert.equal(res.headers.get("retry-after"), String(retryAfter));
}

/** Tokens issued at `clock`'s now are still valid for the LiveKit verifier; users differ. */
function user(n: number): Promise<string> {
  return userJwt({ sub: `user-${n}` });
}

Deno.test("per address: the limit refuses with 429 and Retry-After, then recovers", async () => {
  const clock = new TestClock();
  const serve = limited({ RATE_LIMIT_PER_ADDRESS: "3", RATE_LIMIT_WINDOW_SECONDS: "60" }, clock);
  const address = from("203.0.113.7");
  for (let n = 0; n < 3; n++) {
    await issue(await serve(bearer(await user(n)), address));
    clock.advance(10);
  }
  // The first request (at 0 s) leaves the window at 60 s; it is now 30 s.
  await tooMany(
    await serve(bearer(await user(9)), address),
    /from your network address: at most 3 per 60 s/,
    30,
  );
  // Another address is counted apart.
  await issue(await serve(bearer(await user(9)), from("203.0.113.8")));
  clock.advance(30);
  await issue(await serve(bearer(await user(9)), address));
});

Deno.test("per address: refusals count too, so bad requests cannot flood", async () => {
  const clock = new TestClock();
  const serve = limited({ RATE_LIMIT_PER_ADDRESS: "2" }, clock);
  const address = from("198.51.100.1");
  for (let n = 0; n < 2; n++) assert.equal((await serve(post("junk"), address)).status, 401);
  await tooMany(await serve(bearer(await user(1)), address), /network address/, 60);
});

Deno.test("per address: guests are limited by their address", async () => {
  const clock = new TestClock();
  const serve = limited({ ALLOW_GUESTS: "true", RATE_LIMIT_PER_ADDRESS: "2" }, clock);
  const address = from("198.51.100.2");
  await issue(await serve(post(), address));
  await issue(await serve(post(), address));
  await tooMany(await serve(post(), address), /network address/, 60);
  clock.advance(60);
  await issue(await serve(post(), address));
});

Deno.test("per identity: one user is limited whatever address it comes from", async () => {
  const clock = new TestClock();
  const serve = limited({
    RATE_LIMIT_PER_IDENTITY: "2",
    RATE_LIMIT_WINDOW_SECONDS: "120",
    MAX_CONCURRENT_CALLS: "0",
  }, clock);
  const jwt = await user(1);
  await issue(await serve(bearer(jwt), from("192.0.2.1")));
  clock.advance(20);
  await issue(await serve(bearer(jwt), from("192.0.2.2")));
  await tooMany(
    await serve(bearer(jwt), from("192.0.2.3")),
    /for this user: at most 2 per 120 s/,
    100,
  );
  // Another user is not affected.
  await issue(await serve(bearer(await user(2)), from("192.0.2.3")));
  clock.advance(100);
  await issue(await serve(bearer(jwt), from("192.0.2.4")));
});

Deno.test("concurrent calls: a user holds at most N call slots, freed after CALL_SLOT_SECONDS", async () => {
  const clock = new TestClock();
  const serve = limited({
    MAX_CONCURRENT_CALLS: "2",
    CALL_SLOT_SECONDS: "300",
    RATE_LIMIT_PER_IDENTITY: "0",
  }, clock);
  const jwt = await user(1);
  await issue(await serve(bearer(jwt)));
  clock.advance(100);
  await issue(await serve(bearer(jwt)));
  clock.advance(100);
  await tooMany(await serve(bearer(jwt)), /too many calls at once for this user: at most 2/, 100);
  clock.advance(100);
  await issue(await serve(bearer(jwt)));
  // The slot held at 100 s is the next to free, at 400 s; it is 300 s now.
  await tooMany(await serve(bearer(jwt)), /too many calls at once/, 100);
});

Deno.test("concurrent calls: by default a slot lasts as long as the token", () => {
  assert.equal(config({ TOKEN_TTL_SECONDS: "120" }).limits.callSlotSeconds, 120);
  assert.equal(config().limits.callSlotSeconds, 600);
});

Deno.test("a limit of 0 is off", async () => {
  const clock = new TestClock();
  const serve = limited({
    RATE_LIMIT_PER_ADDRESS: "0",
    RATE_LIMIT_PER_IDENTITY: "0",
    MAX_CONCURRENT_CALLS: "0",
  }, clock);
  const jwt = await user(1);
  for (let n = 0; n < 50; n++) await issue(await serve(bearer(jwt), from("192.0.2.9")));
});

Deno.test("a shared store behind the LimitStore interface counts across instances", async () => {
  const clock = new TestClock();
  const shared = new MemoryLimitStore();
  const env = { RATE_LIMIT_PER_ADDRESS: "2" };
  const [a, b] = [limited(env, clock, shared), limited(env, clock, shared)];
  const address = from("203.0.113.50");
  await issue(await a(bearer(await user(1)), address));
  await issue(await b(bearer(await user(2)), address));
  await tooMany(await a(bearer(await user(3)), address), /network address/, 60);
  await tooMany(await b(bearer(await user(3)), address), /network address/, 60);
});

Deno.test("the memory store stays bounded, dropping expired keys first", async () => {
  const store = new MemoryLimitStore(3);
  let now = 0;
  for (const key of ["a", "b", "c"]) assert.equal(await store.take(key, 1, 1000, now), 0);
  assert.equal(await store.take("a", 1, 1000, now), 1000);
  now = 2000;
  assert.equal(await store.take("d", 1, 1000, now), 0);
  assert.equal(store.size, 1);
  // Full of live keys: the oldest is forgotten, which only ever lets someone in.
  for (const key of ["e", "f", "g"]) await store.take(key, 1, 10_000, now);
  assert.equal(store.size, 3);
  assert.equal(await store.take("d", 1, 10_000, now), 0);
});

const proxied = (header: string | null, hops: number, name = "x-forwarded-for") =>
  clientAddress(
    new Request("http://127.0.0.1/", { headers: header === null ? {} : { [name]: header } }),
    from("10.0.0.5"),
    { trustedHops: hops, header: name },
  );

Deno.test("the caller's address: the connection unless proxies are trusted", () => {
  assert.equal(proxied("198.51.100.9", 0), "10.0.0.5");
  assert.equal(proxied(null, 1), "10.0.0.5");
  assert.equal(proxied("198.51.100.9", 1), "198.51.100.9");
  // A caller's own X-Forwarded-For entries sit left of what the trusted proxy appended.
  assert.equal(proxied("1.2.3.4, 198.51.100.9", 1), "198.51.100.9");
  assert.equal(proxied("1.2.3.4, 198.51.100.9, 10.1.1.1", 2), "198.51.100.9");
  assert.equal(proxied("198.51.100.9", 3), "198.51.100.9");
  assert.equal(proxied("203.0.113.4", 1, "cf-connecting-ip"), "203.0.113.4");
});

Deno.test("TRUST_PROXY: the header's address is limited, not the proxy's", async () => {
  const clock = new TestClock();
  const serve = limited({
    TRUST_PROXY: "1",
    RATE_LIMIT_PER_ADDRESS: "1",
    MAX_CONCURRENT_CALLS: "0",
  }, clock);
  const proxy = from("10.0.0.5");
  const via = async (client: string) =>
    await serve(
      new Request("http://127.0.0.1/", {
        method: "POST",
        headers: { authorization: `Bearer ${await user(1)}`, "x-forwarded-for": client },
      }),
      proxy,
    );
  await issue(await via("198.51.100.1"));
  await issue(await via("198.51.100.2"));
  await tooMany(await via("spoofed, 198.51.100.1"), /network address/, 60);
});

Deno.test("addresses: IPv6 counts by /64, IPv4-mapped as IPv4, junk by its text", () => {
  assert.equal(bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assert.equal(bucket("2001:0db8:0001:0002:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
  assert.equal(bucket("[2001:db8:1:2::9]:443"), "2001:db8:1:2::/64");
  assert.equal(bucket("::1"), "0:0:0:0::/64");
  assert.equal(bucket("::ffff:192.0.2.1"), "192.0.2.1");
  assert.equal(bucket("192.0.2.1"), "192.0.2.1");
  assert.equal(bucket("not-an-address"), "not-an-address");
  assert.equal(bucket("x".repeat(500)).length, 64);
  assert.equal(bucket("1:2:3"), "1:2:3");
});
