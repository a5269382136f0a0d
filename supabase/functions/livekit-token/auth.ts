/** Who is asking: a signed-in Supabase user, or a guest when guests are allowed. */

import { errors as joseErrors, type JWTPayload, jwtVerify } from "jose";
import type { Config } from "./config.ts";
import { HttpError } from "./http.ts";

export interface Caller {
  readonly identity: string;
  readonly isGuest: boolean;
}

const BEARER = /^Bearer\s+(\S+)$/i;
const CHALLENGE = { "WWW-Authenticate": 'Bearer error="invalid_token"' };

/** 16 hex characters: 64 random bits, enough that two guests never share a name. */
export function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function identifyCaller(req: Request, config: Config): Promise<Caller> {
  const header = req.headers.get("authorization");
  const subject = header === null ? null : await verifiedSubject(header, config);
  if (subject !== null) return { identity: subject, isGuest: false };
  if (!config.allowGuests) {
    throw new HttpError(401, "sign-in required: this server does not allow guests", {
      "WWW-Authenticate": "Bearer",
    });
  }
  return { identity: `guest-${randomSuffix()}`, isGuest: true };
}

/**
 * The user id of a valid Supabase JWT, or null for a valid token that names no user
 * (the project's anon key, which supabase-js sends when nobody is signed in).
 */
async function verifiedSubject(header: string, config: Config): Promise<string | null> {
  const token = BEARER.exec(header.trim())?.[1];
  if (token === undefined) {
    throw new HttpError(401, "Authorization header must be 'Bearer <token>'", CHALLENGE);
  }
  if (config.jwtSecret === null) {
    throw new HttpError(
      500,
      "server configuration error: SUPABASE_JWT_SECRET (or AUTH_JWT_SECRET) is not set, so bearer tokens cannot be verified",
    );
  }
  const claims = await verify(token, config.jwtSecret);
  return typeof claims.sub === "string" && claims.sub !== "" ? claims.sub : null;
}

async function verify(token: string, secret: string): Promise<JWTPayload> {
  try {
    const key = new TextEncoder().encode(secret);
    const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"] });
    return payload;
  } catch (err) {
    const expired = err instanceof joseErrors.JWTExpired;
    throw new HttpError(
      401,
      expired ? "access token has expired" : "access token is invalid",
      CHALLENGE,
    );
  }
}
