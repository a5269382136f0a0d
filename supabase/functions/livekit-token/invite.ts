/**
 * Invite codes: a caller in a room lets another signed-in caller into that same room.
 *
 * A code names one room, the inviting caller and an expiry, and is signed with HMAC-SHA-256
 * under a key derived from the invite secret (INVITE_SECRET, else the LiveKit API secret); so
 * it cannot be guessed, altered or moved to another room, and the function keeps no state for
 * it. The key is derived for this use alone, so a code's signature is never one LiveKit would
 * accept, nor the reverse.
 */

import { base64url } from "jose";
import { TokenVerifier } from "livekit-server-sdk";
import { NAME_PATTERN } from "./config.ts";
import { HttpError } from "./http.ts";
import type { Clock } from "./limits.ts";

/** What an invite code proves, once its signature and expiry are checked. */
export interface Invite {
  readonly roomName: string;
  /** Identity of the caller who asked for the invite. */
  readonly inviter: string;
  /** Seconds since the epoch after which the code is refused. */
  readonly expires: number;
}

export interface InviteResponse {
  readonly inviteCode: string;
  readonly roomName: string;
  /** ISO 8601 time after which the code is refused. */
  readonly expiresAt: string;
}

const VERSION = "v1";
const KEY_CONTEXT = "voicefleet livekit-token invite codes v1";
/** Far above a real code (~150 characters); anything longer is refused before any work. */
export const MAX_CODE_LENGTH = 512;
const CODE_SHAPE = /^v1\.[A-Za-z0-9_-]{1,400}\.[A-Za-z0-9_-]{43}$/;
const IDENTITY = /^[\w.@:-]{1,128}$/;
const ASK_AGAIN = "ask the caller who invited you for a new invite";

function refused(message: string): HttpError {
  return new HttpError(403, message);
}

async function hmacKey(secret: Uint8Array<ArrayBuffer>, usages: KeyUsage[]): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, [
    ...usages,
  ]);
}

/** HMAC(secret, context): the key of invite codes, never the secret itself. */
async function deriveKey(secret: string): Promise<CryptoKey> {
  const encoder = new TextEncoder();
  const master = await hmacKey(encoder.encode(secret), ["sign"]);
  const derived = await crypto.subtle.sign("HMAC", master, encoder.encode(KEY_CONTEXT));
  return await hmacKey(new Uint8Array(derived), ["sign", "verify"]);
}

export class InviteCodes {
  #derived: Promise<CryptoKey> | null = null;

  constructor(private readonly secret: string, private readonly now: Clock) {}

  /** Derived on first use, so a handler that never sees an invite never derives it. */
  get #key(): Promise<CryptoKey> {
    this.#derived ??= deriveKey(this.secret);
    return this.#derived;
  }

  /** A code for `roomName` from `inviter`, valid for `ttlSeconds`. */
  async create(roomName: string, inviter: string, ttlSeconds: number): Promise<InviteResponse> {
    const expires = Math.floor(this.now() / 1000) + ttlSeconds;
    // A nonce, so two invites to the same room in the same second still differ.
    const nonce = base64url.encode(crypto.getRandomValues(new Uint8Array(12)));
    const payload = base64url.encode(
      JSON.stringify({ r: roomName, i: inviter, e: expires, n: nonce }),
    );
    const signed = `${VERSION}.${payload}`;
    const signature = await crypto.subtle.sign(
      "HMAC",
      await this.#key,
      new TextEncoder().encode(signed),
    );
    return {
      inviteCode: `${signed}.${base64url.encode(new Uint8Array(signature))}`,
      roomName,
      expiresAt: new Date(expires * 1000).toISOString(),
    };
  }

  /** The invite a code carries; refuses a malformed, forged or expired code. */
  async open(code: string): Promise<Invite> {
    if (code.length > MAX_CODE_LENGTH || !CODE_SHAPE.test(code)) {
      throw new HttpError(400, "invite_code is not an invite code: paste the whole code");
    }
    const cut = code.lastIndexOf(".");
    const valid = await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      new Uint8Array(base64url.decode(code.slice(cut + 1))),
      new TextEncoder().encode(code.slice(0, cut)),
    );
    if (!valid) throw refused(`invite code is not valid on this server: ${ASK_AGAIN}`);
    const invite = readPayload(code.slice(VERSION.length + 1, cut));
    if (invite.expires * 1000 <= this.now()) {
      throw refused(`invite code has expired: ${ASK_AGAIN}`);
    }
    return invite;
  }
}

/** Only ever reached with a payload this server signed; checked all the same. */
function readPayload(payload: string): Invite {
  let fields: unknown;
  try {
    fields = JSON.parse(new TextDecoder().decode(base64url.decode(payload)));
  } catch {
    fields = null;
  }
  const { r, i, e } = (fields ?? {}) as Record<string, unknown>;
  if (
    typeof r !== "string" || !NAME_PATTERN.test(r) || typeof i !== "string" ||
    !IDENTITY.test(i) || typeof e !== "number" || !Number.isSafeInteger(e)
  ) {
    throw refused(`invite code is not valid on this server: ${ASK_AGAIN}`);
  }
  return { roomName: r, inviter: i, expires: e };
}

/**
 * The room of a participant token this server's LiveKit key signed for `identity`: the proof
 * that the caller asking for an invite is in (or may join) that room.
 */
export async function roomOfToken(
  verifier: TokenVerifier,
  token: string,
  identity: string,
  now: Clock,
): Promise<string> {
  let claims;
  try {
    claims = await verifier.verify(token, 0);
  } catch {
    throw refused(
      "invite_with_token is not a valid participant token of this server: send the participantToken of your call",
    );
  }
  if (typeof claims.exp !== "number" || claims.exp * 1000 <= now()) {
    throw refused("invite_with_token has expired: start a new call to invite others");
  }
  if (claims.sub !== identity) {
    throw refused("invite_with_token belongs to another participant: send your own token");
  }
  const room = claims.video?.room;
  if (claims.video?.roomJoin !== true || typeof room !== "string" || !NAME_PATTERN.test(room)) {
    throw refused("invite_with_token does not let you join a room");
  }
  return room;
}
