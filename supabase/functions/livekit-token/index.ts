/**
 * livekit-token: mints a short-lived LiveKit access token for one room and dispatches a
 * voicefleet agent into it. The server decides everything that costs money or reaches another
 * caller: who the caller is (a verified Supabase user, or a guest only where allowed), the room
 * (a new one per call), the agent (from an allow-list) and the room's limits. A browser never
 * needs LiveKit API credentials. Where rooms may hold several callers, a caller in a call asks
 * for an invite code, and whoever they give it to exchanges it for a token to that room.
 */

import { decodeJwt } from "jose";
import {
  AccessToken,
  RoomAgentDispatch,
  RoomConfiguration,
  TokenVerifier,
  TrackSource,
} from "livekit-server-sdk";
import { clientAddress, type Connection } from "./address.ts";
import { Authenticator, type Caller, randomSuffix } from "./auth.ts";
import { parseTokenRequest, readBody, type TokenRequest } from "./body.ts";
import { type Config, type LiveKitSettings, loadConfig, type RoomSettings } from "./config.ts";
import { ALLOWED_METHODS, checkOrigin, errorResponse, HttpError, json, preflight } from "./http.ts";
import { InviteCodes, type InviteResponse, roomOfToken } from "./invite.ts";
import { type Clock, Limits, type LimitStore, MemoryLimitStore } from "./limits.ts";

export { type Config, loadConfig } from "./config.ts";
export { type LimitStore, MemoryLimitStore } from "./limits.ts";
export type { InviteResponse } from "./invite.ts";

export interface TokenResponse {
  readonly serverUrl: string;
  readonly roomName: string;
  readonly participantName: string;
  readonly participantToken: string;
  /** ISO 8601 time after which LiveKit refuses the token. */
  readonly expiresAt: string;
}

export interface HandlerOptions {
  /** Where the limit counters live; this instance's memory unless a shared store is given. */
  readonly store?: LimitStore;
  /** Milliseconds since the epoch; tests move it instead of sleeping. */
  readonly now?: Clock;
}

export type Handler = (req: Request, connection?: Connection) => Promise<Response>;

/** One handler per configuration: it owns the limit counters and the cached key set. */
export function createHandler(config: Config, options: HandlerOptions = {}): Handler {
  const now = options.now ?? Date.now;
  const limits = new Limits(config.limits, options.store ?? new MemoryLimitStore(), now);
  const auth = new Authenticator(config.auth, config.allowGuests, now);
  const origins = config.corsAllowedOrigins;

  async function answer(
    req: Request,
    connection?: Connection,
  ): Promise<TokenResponse | InviteResponse> {
    const livekit = requireLiveKit(config);
    // Counted before any verification, so floods are cheap to refuse.
    await limits.checkAddress(clientAddress(req, connection, config.proxy));
    const caller = await auth.identify(req);
    const body = parseTokenRequest(await readBody(req), req.headers.get("content-type"));
    if (body.inviteWithToken !== undefined) {
      return await invite(livekit, caller, body.inviteWithToken);
    }
    if (body.inviteCode !== undefined) return await joinByInvite(livekit, caller, body);
    const agentName = chooseAgent(body, config.agentNames);
    // A guest's identity is new on every request, so only its address limits it.
    if (caller.kind !== "guest") {
      await limits.checkIdentity(caller.identity);
      await limits.holdCallSlot(caller.identity);
    }
    return await mint(livekit, config, caller, body, `voice-${randomSuffix()}`, agentName);
  }

  /** An invite code to the room of the caller's own participant token. */
  async function invite(
    livekit: LiveKitSettings,
    caller: Caller,
    participantToken: string,
  ): Promise<InviteResponse> {
    requireInvites(config);
    if (caller.kind === "guest") {
      throw new HttpError(403, "guests cannot invite: sign in to invite others to your call");
    }
    await limits.checkIdentity(caller.identity);
    const verifier = new TokenVerifier(livekit.apiKey, livekit.apiSecret);
    const roomName = await roomOfToken(verifier, participantToken, caller.identity, now);
    return await codes(livekit).create(roomName, caller.identity, config.invites.ttlSeconds);
  }

  /** A token to the invite's room; its agent is already there, so none is dispatched. */
  async function joinByInvite(
    livekit: LiveKitSettings,
    caller: Caller,
    body: TokenRequest,
  ): Promise<TokenResponse> {
    requireInvites(config);
    if (caller.kind !== "guest") await limits.checkIdentity(caller.identity);
    const { roomName, inviter } = await codes(livekit).open(body.inviteCode ?? "");
    if (inviter === caller.identity) {
      // The same identity joining again would push the inviter out of their own call.
      throw new HttpError(409, "this invite is your own: you are already in its room");
    }
    if (caller.kind !== "guest") await limits.holdCallSlot(caller.identity);
    return await mint(livekit, config, caller, body, roomName, null);
  }

  let inviteCodes: InviteCodes | null = null;
  function codes(livekit: LiveKitSettings): InviteCodes {
    inviteCodes ??= new InviteCodes(config.invites.secret ?? livekit.apiSecret, now);
    return inviteCodes;
  }

  return async (req, connection) => {
    try {
      if (req.method === "OPTIONS") {
        checkOrigin(req, origins);
        return preflight(req, origins);
      }
      if (req.method !== "POST") {
        throw new HttpError(405, `method ${req.method} is not allowed; use POST`, {
          Allow: ALLOWED_METHODS,
        });
      }
      checkOrigin(req, origins);
      return json(req, origins, 200, await answer(req, connection));
    } catch (err) {
      return errorResponse(req, origins, asHttpError(err));
    } finally {
      // The unread body of a refused request must not hold the connection.
      if (!req.bodyUsed && req.body !== null) await req.body.cancel().catch(() => {});
    }
  };
}

function requireInvites(config: Config): void {
  if (config.room.maxCallers > 1) return;
  throw new HttpError(
    403,
    "invites are off on this server: each room holds one caller (ROOM_MAX_CALLERS is 1)",
  );
}

function requireLiveKit(config: Config): LiveKitSettings {
  if (config.livekit === null || config.problems.length > 0) {
    throw new HttpError(500, `server configuration error: ${config.problems.join("; ")}`);
  }
  return config.livekit;
}

/** The default agent, or one the caller named from the server's allow-list. */
function chooseAgent(body: TokenRequest, allowed: readonly string[]): string {
  if (body.agentName === undefined) return allowed[0];
  if (allowed.includes(body.agentName)) return body.agentName;
  throw new HttpError(
    403,
    `agent "${body.agentName}" is not offered by this server; available: ${allowed.join(", ")}`,
  );
}

/**
 * A token that can only join `roomName` and publish only a microphone. When the token creates
 * the room, LiveKit gives the room its limits (so it closes itself soon after the call) and
 * dispatches `agentName`; a token to a call already going (`agentName` null) dispatches none.
 */
async function mint(
  livekit: LiveKitSettings,
  config: Config,
  caller: Caller,
  body: TokenRequest,
  roomName: string,
  agentName: string | null,
): Promise<TokenResponse> {
  const participantName = body.participantName ?? caller.identity;
  const token = new AccessToken(livekit.apiKey, livekit.apiSecret, {
    identity: caller.identity,
    name: participantName,
    ttl: config.tokenTtlSeconds,
  });
  token.addGrant({
    roomJoin: true,
    room: roomName,
    canPublish: true,
    canPublishSources: [TrackSource.MICROPHONE],
    canSubscribe: true,
    // Typed chat messages reach the agent as text streams, which are data.
    canPublishData: true,
    canUpdateOwnMetadata: false,
  });
  token.roomConfig = roomConfiguration(config.room, agentName);
  const participantToken = await token.toJwt();
  return {
    serverUrl: livekit.url,
    roomName,
    participantName,
    participantToken,
    expiresAt: expiryOf(participantToken),
  };
}

function roomConfiguration(room: RoomSettings, agentName: string | null): RoomConfiguration {
  return new RoomConfiguration({
    agents: agentName === null ? [] : [new RoomAgentDispatch({ agentName })],
    maxParticipants: room.maxParticipants,
    emptyTimeout: room.emptyTimeoutSeconds,
    departureTimeout: room.departureTimeoutSeconds,
  });
}

/** Read back from the token itself so the answer matches what LiveKit will enforce. */
function expiryOf(token: string): string {
  const { exp } = decodeJwt(token);
  if (exp === undefined) throw new Error("minted token has no expiry");
  return new Date(exp * 1000).toISOString();
}

function asHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  // Unexpected failures are logged here and answered without details that could leak.
  console.error("livekit-token: unexpected failure", err);
  return new HttpError(500, "internal error while issuing the token");
}

if (import.meta.main) {
  const config = loadConfig(Deno.env.toObject());
  for (const problem of config.problems) console.error(`livekit-token: ${problem}`);
  const handler = createHandler(config);
  const listen = {
    hostname: Deno.env.get("HOST") ?? "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? 54321),
  };
  Deno.serve(listen, (req, info) => handler(req, info));
}
