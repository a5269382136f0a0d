/** Helpers shared by the tests: configurations, requests, Supabase-like tokens and a JWKS. */

import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, type JWK, type KeyLike, SignJWT } from "jose";
import { RoomConfiguration, TokenVerifier } from "livekit-server-sdk";
import type { ClaimGrants } from "livekit-server-sdk";
import type { Connection } from "./address.ts";
import { type Config, createHandler, type Handler, loadConfig } from "./index.ts";

export const API_KEY = "vf-test-key";
export const API_SECRET = "vf-test-secret-0123456789abcdef0123456789abcdef";
export const JWT_SECRET = "supabase-jwt-secret-for-tests-0123456789abcdef";
export const PROJECT = "https://project-a.supabase.test";
export const ISSUER = `${PROJECT}/auth/v1`;
export const ENDPOINT = "http://127.0.0.1:54321/functions/v1/livekit-token";
export const USER = "5b0c7c8e-1d2f-4a3b-9c8d-7e6f5a4b3c2d";

/** A project verified by its legacy secret only: no key set, so no network is needed. */
export const BASE_ENV: Record<string, string> = {
  LIVEKIT_URL: "ws://127.0.0.1:7880",
  LIVEKIT_API_KEY: API_KEY,
  LIVEKIT_API_SECRET: API_SECRET,
  SUPABASE_JWT_SECRET: JWT_SECRET,
  SUPABASE_JWT_ISSUER: ISSUER,
};

export function config(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({ ...BASE_ENV, ...overrides });
}

/** Limits are off here, so tests can repeat requests; limits_test.ts turns them on. */
export const NO_LIMITS = {
  RATE_LIMIT_PER_ADDRESS: "0",
  RATE_LIMIT_PER_IDENTITY: "0",
  MAX_CONCURRENT_CALLS: "0",
};

export function handler(overrides: Record<string, string | undefined> = {}): Handler {
  const cfg = config({ ...NO_LIMITS, ...overrides });
  assert.deepEqual(cfg.problems, []);
  return createHandler(cfg);
}

export function post(body?: BodyInit, headers: Record<string, string> = {}): Request {
  const withType = body === undefined
    ? headers
    : { "content-type": "application/json", ...headers };
  return new Request(ENDPOINT, { method: "POST", body, headers: withType });
}

export function bearer(token: string, body?: BodyInit): Request {
  return post(body, { authorization: `Bearer ${token}` });
}

/** A connection from `hostname`, as Deno.serve describes it. */
export function from(hostname: string): Connection {
  return { remoteAddr: { transport: "tcp", hostname, port: 40000 } };
}

export interface Signing {
  readonly alg?: "HS256" | "ES256" | "RS256";
  /** An HMAC secret (text or bytes) or a private key. */
  readonly key?: string | Uint8Array | KeyLike;
  readonly kid?: string;
  readonly expiresIn?: string | number;
}

/** The claims Supabase Auth puts in a signed-in user's access token, overridable. */
export async function userJwt(
  overrides: Record<string, unknown> = {},
  signing: Signing = {},
): Promise<string> {
  const claims = {
    sub: USER,
    role: "authenticated",
    aud: "authenticated",
    iss: ISSUER,
    is_anonymous: false,
    ...overrides,
  };
  const alg = signing.alg ?? "HS256";
  const key = signing.key ?? JWT_SECRET;
  const jwt = new SignJWT(claims)
    .setProtectedHeader(signing.kid === undefined ? { alg } : { alg, kid: signing.kid })
    .setIssuedAt();
  if (signing.expiresIn !== undefined || !("exp" in overrides)) {
    jwt.setExpirationTime(signing.expiresIn ?? "1h");
  }
  return await jwt.sign(typeof key === "string" ? new TextEncoder().encode(key) : key);
}

/** An `alg: none` token: a header and claims with no signature at all. */
export function unsignedJwt(claims: Record<string, unknown> = {}): string {
  const part = (value: unknown) =>
    btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const body = { sub: USER, role: "authenticated", aud: "authenticated", iss: ISSUER, ...claims };
  return `${part({ alg: "none", typ: "JWT" })}.${part({ exp: 9999999999, ...body })}.`;
}

export async function issue(res: Response): Promise<TokenBody> {
  assert.equal(res.status, 200, await res.clone().text());
  return await res.json() as TokenBody;
}

export interface TokenBody {
  readonly serverUrl: string;
  readonly roomName: string;
  readonly participantName: string;
  readonly participantToken: string;
  readonly expiresAt: string;
}

export async function verify(token: string): Promise<ClaimGrants> {
  return await new TokenVerifier(API_KEY, API_SECRET).verify(token);
}

export function roomConfigOf(claims: ClaimGrants): RoomConfiguration {
  // The JWT carries the protobuf JSON form; parse it back through the SDK's own type.
  return RoomConfiguration.fromJson(claims.roomConfig as never);
}

export function dispatchedAgents(claims: ClaimGrants): string[] {
  return roomConfigOf(claims).agents.map((agent) => agent.agentName);
}

/** The one error message of a refusal, after checking it is the only field. */
export async function errorOf(res: Response): Promise<string> {
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  const body = await res.json() as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(typeof body.error, "string");
  assert.notEqual(body.error, "");
  return body.error as string;
}

export interface KeyPair {
  readonly kid: string;
  readonly alg: "ES256" | "RS256";
  readonly privateKey: KeyLike;
  readonly publicKey: KeyLike;
  readonly jwk: JWK;
}

export async function keyPair(alg: "ES256" | "RS256", kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...await exportJWK(publicKey), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicKey, jwk };
}

/**
 * A Supabase project's key set served over real HTTP on 127.0.0.1, at the path Supabase uses.
 * `requests` counts fetches so tests can see the cache at work.
 */
export class JwksServer {
  requests = 0;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor(keys: readonly KeyPair[]) {
    const body = JSON.stringify({ keys: keys.map((key) => key.jwk) });
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      this.requests++;
      if (new URL(req.url).pathname !== "/auth/v1/.well-known/jwks.json") {
        return new Response("not found", { status: 404 });
      }
      return new Response(body, { headers: { "content-type": "application/json" } });
    });
  }

  /** What SUPABASE_URL would be for a project served here. */
  get projectUrl(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}
