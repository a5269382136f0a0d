/**
 * livekit-token: mints a short-lived LiveKit access token for one room and dispatches a
 * voicefleet agent into it. The server decides everything that costs money or reaches another
 * caller: who the caller is (a verified Supabase user, or a guest only where allowed), the room
 * (a new one per call), the agent (from an allow-list) and the room's limits. A browser never
 * needs LiveKit API credentials.
 */

import { decodeJwt } from "jose";
import { AccessToken, RoomAgentDispatch, RoomConfiguration, TrackSource } from "livekit-server-sdk";
import { clientAddress, type Connection } from "./address.ts";
import { Authenticator, type Caller, randomSuffix } from "./auth.ts";
import { parseTokenRequest, readBody, type TokenRequest } from "./body.ts";
import { type Config, type LiveKitSettings, loadConfig, type RoomSettings } from "./config.ts";
import { ALLOWED_METHODS, checkOrigin, errorResponse, HttpError, json, preflight } from "./http.ts";
import { type Clock, Limits, type LimitStore, MemoryLimitStore } from "./limits.ts";

export { type Config, loadConfig } from "./config.ts";
export { type LimitStore, MemoryLimitStore } from "./limits.ts";

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

  async function issueToken(req: Request, connection?: Connection): Promise<TokenResponse> {
    const livekit = requireLiveKit(config);
    // Counted before any verification, so floods are cheap to refuse.
    await limits.checkAddress(clientAddress(req, connection, config.proxy));
    const caller = await auth.identify(req);
    const body = parseTokenRequest(await readBody(req), req.headers.get("content-type"));
    const agentName = chooseAgent(body, config.agentNames);
    // A guest's identity is new on every request, so only its address limits it.
    if (caller.kind !== "guest") {
      await limits.checkIdentity(caller.identity);
      await limits.holdCallSlot(caller.identity);
    }
    return await mint(livekit, config, caller, body, agentName);
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
      return json(req, origins, 200, await issueToken(req, connection));
    } catch (err) {
      return errorResponse(req, origins, asHttpError(err));
    } finally {
      // The unread body of a refused request must not hold the connection.
      if (!req.bodyUsed && req.body !== null) await req.body.cancel().catch(() => {});
    }
  };
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
 * A token that can only join one new room, publish only a microphone, and whose room
 * dispatches exactly one agent and closes itself soon after the call.
 */
async function mint(
  livekit: LiveKitSettings,
  config: Config,
  caller: Caller,
  body: TokenRequest,
  agentName: string,
): Promise<TokenResponse> {
  const roomName = `voice-${randomSuffix()}`;
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

function roomConfiguration(room: RoomSettings, agentName: string): RoomConfiguration {
  return new RoomConfiguration({
    agents: [new RoomAgentDispatch({ agentName })],
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
