/**
 * Who is asking: a signed-in Supabase user, or a guest when the deployer allows guests.
 *
 * Supabase signs access tokens either with the project's asymmetric keys (published as a
 * JWKS; the default for new projects) or with the legacy shared HS256 secret. Each kind of key
 * only ever checks the algorithms made for it, so a token that claims HS256 is never checked
 * against a public key (the "algorithm confusion" forgery) and `alg: none` is never accepted.
 */

import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import type { AuthSettings } from "./config.ts";
import { HttpError } from "./http.ts";
import type { Clock } from "./limits.ts";

export interface Caller {
  readonly identity: string;
  /**
   * `user`: signed in with an account. `anonymous`: a Supabase anonymous sign-in, a guest with
   * a lasting identity. `guest`: no sign-in at all, a new identity on every request.
   */
  readonly kind: "user" | "anonymous" | "guest";
}

const BEARER = /^Bearer\s+(\S+)$/i;
const CHALLENGE = { "WWW-Authenticate": 'Bearer error="invalid_token"' };
const ASYMMETRIC = ["ES256", "RS256"];
/** Clocks of Supabase Auth and this function may differ a little. */
const CLOCK_TOLERANCE_SECONDS = 5;

/** 16 hex characters: 64 random bits, enough that two guests or rooms never share a name. */
export function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The key set could not be fetched: the server's problem, not the caller's. */
class KeySetUnavailable extends Error {}

function invalid(message: string): HttpError {
  return new HttpError(401, message, CHALLENGE);
}

export class Authenticator {
  readonly #secret: Uint8Array | null;
  readonly #jwks: JWTVerifyGetKey | null;

  constructor(
    private readonly settings: AuthSettings,
    private readonly allowGuests: boolean,
    private readonly now: Clock,
  ) {
    this.#secret = settings.jwtSecret === null
      ? null
      : new TextEncoder().encode(settings.jwtSecret);
    this.#jwks = settings.jwksUrl === null ? null : keySet(new URL(settings.jwksUrl));
  }

  async identify(req: Request): Promise<Caller> {
    const header = req.headers.get("authorization");
    const caller = header === null ? null : await this.#user(header);
    if (caller?.kind === "user") return caller;
    if (!this.allowGuests) {
      throw caller === null
        ? new HttpError(401, "sign-in required: this server does not allow guests", {
          "WWW-Authenticate": "Bearer",
        })
        : new HttpError(
          403,
          "anonymous sign-ins count as guests and this server does not allow guests: sign in with an account",
        );
    }
    return caller ?? { identity: `guest-${randomSuffix()}`, kind: "guest" };
  }

  /**
   * The caller named by a valid Supabase access token, or null for a valid token that names no
   * user (the project's legacy anon key, which supabase-js sends when nobody is signed in).
   */
  async #user(header: string): Promise<Caller | null> {
    const token = BEARER.exec(header.trim())?.[1];
    if (token === undefined) throw invalid("Authorization header must be 'Bearer <token>'");
    const claims = await this.#verify(token);
    if (claims.role === "anon" && claims.sub === undefined) return null;
    return this.#caller(claims);
  }

  async #verify(token: string): Promise<JWTPayload> {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw invalid("access token is invalid: not a JWT");
    }
    const options = {
      requiredClaims: ["exp"],
      currentDate: new Date(this.now()),
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    };
    try {
      if (alg === "HS256" && this.#secret !== null) {
        return (await jwtVerify(token, this.#secret, { ...options, algorithms: ["HS256"] }))
          .payload;
      }
      if (typeof alg === "string" && ASYMMETRIC.includes(alg) && this.#jwks !== null) {
        return (await jwtVerify(token, this.#jwks, { ...options, algorithms: ASYMMETRIC }))
          .payload;
      }
    } catch (err) {
      throw refusal(err);
    }
    throw this.#unverifiable(alg);
  }

  #unverifiable(alg: unknown): HttpError {
    if (this.#secret === null && this.#jwks === null) {
      return new HttpError(
        500,
        "server configuration error: no key verifies access tokens; set SUPABASE_URL, SUPABASE_JWKS_URL or SUPABASE_JWT_SECRET",
      );
    }
    const named = typeof alg === "string" ? JSON.stringify(alg.slice(0, 16)) : "no algorithm";
    return invalid(`access token is invalid: ${named} is not an accepted signing algorithm`);
  }

  /** Claims Supabase Auth puts in a signed-in user's access token. */
  #caller(claims: JWTPayload): Caller {
    const { issuer, audience } = this.settings;
    if (issuer !== null && claims.iss !== issuer) {
      throw invalid("access token was issued by another Supabase project");
    }
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(audience)) {
      throw invalid(`access token audience must be "${audience}"`);
    }
    if (claims.role !== "authenticated") {
      throw invalid('access token role must be "authenticated"');
    }
    if (typeof claims.sub !== "string" || !/^[\w.@:-]{1,128}$/.test(claims.sub)) {
      throw invalid("access token names no valid user (sub)");
    }
    return { identity: claims.sub, kind: claims.is_anonymous === true ? "anonymous" : "user" };
  }
}

/**
 * The project's published keys, fetched on first use and cached; an unknown key id refetches
 * at most every 30 s, so forged key ids cannot make the function hammer Supabase.
 */
function keySet(url: URL): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(url, {
    timeoutDuration: 5000,
    cooldownDuration: 30_000,
    cacheMaxAge: 600_000,
  });
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      const tokenFault = err instanceof joseErrors.JWKSNoMatchingKey ||
        err instanceof joseErrors.JWKSMultipleMatchingKeys;
      if (tokenFault) throw err;
      throw new KeySetUnavailable("the key set could not be read", { cause: err });
    }
  };
}

function refusal(err: unknown): HttpError {
  if (err instanceof KeySetUnavailable) {
    console.error("livekit-token: JWKS unavailable", err.cause);
    return new HttpError(503, "cannot verify access tokens right now: try again shortly", {
      "Retry-After": "5",
    });
  }
  if (err instanceof joseErrors.JWTExpired) return invalid("access token has expired");
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return invalid("access token is invalid: signed with a key this project does not publish");
  }
  if (!(err instanceof joseErrors.JOSEError)) {
    // Still the token's fault (whatever it is, it did not verify), but worth a look.
    console.warn("livekit-token: unexpected error verifying a token", err);
  }
  return invalid("access token is invalid");
}
