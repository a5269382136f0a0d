/**
 * livekit-token: mints a short-lived LiveKit access token for one room and dispatches a
 * voicefleet agent into it. The agent is chosen here, on the server, through the token's
 * room configuration, so a browser never needs LiveKit API credentials.
 */

import { decodeJwt } from "jose";
import { AccessToken, RoomAgentDispatch, RoomConfiguration } from "livekit-server-sdk";
import { identifyCaller, randomSuffix } from "./auth.ts";
import { parseTokenRequest, readBody } from "./body.ts";
import { type Config, type LiveKitSettings, loadConfig } from "./config.ts";
import { ALLOWED_METHODS, errorResponse, HttpError, json, preflight } from "./http.ts";

export { type Config, loadConfig } from "./config.ts";

export interface TokenResponse {
  readonly serverUrl: string;
  readonly roomName: string;
  readonly participantName: string;
  readonly participantToken: string;
  /** ISO 8601 time after which LiveKit refuses the token. */
  readonly expiresAt: string;
}

export async function handleRequest(req: Request, env: Config): Promise<Response> {
  const origins = env.corsAllowedOrigins;
  if (req.method === "OPTIONS") return preflight(req, origins);
  try {
    if (req.method !== "POST") {
      throw new HttpError(405, `method ${req.method} is not allowed; use POST`, {
        Allow: ALLOWED_METHODS,
      });
    }
    return json(req, origins, 200, await issueToken(req, env));
  } catch (err) {
    return errorResponse(req, origins, asHttpError(err));
  }
}

async function issueToken(req: Request, env: Config): Promise<TokenResponse> {
  const livekit = requireLiveKit(env);
  const caller = await identifyCaller(req, env);
  const body = parseTokenRequest(await readBody(req), req.headers.get("content-type"));
  const roomName = body.roomName ?? `voice-${randomSuffix()}`;
  const agentName = body.agentName ?? env.defaultAgentName;
  const participantToken = await mint(livekit, {
    identity: caller.identity,
    roomName,
    agentName,
    ttlSeconds: env.tokenTtlSeconds,
  });
  return {
    serverUrl: livekit.url,
    roomName,
    participantName: caller.identity,
    participantToken,
    expiresAt: expiryOf(participantToken),
  };
}

function requireLiveKit(env: Config): LiveKitSettings {
  if (env.livekit === null || env.problems.length > 0) {
    throw new HttpError(500, `server configuration error: ${env.problems.join("; ")}`);
  }
  return env.livekit;
}

interface Grant {
  readonly identity: string;
  readonly roomName: string;
  readonly agentName: string;
  readonly ttlSeconds: number;
}

/** A token that can only join one room, and whose room dispatches exactly one agent. */
async function mint(livekit: LiveKitSettings, grant: Grant): Promise<string> {
  const token = new AccessToken(livekit.apiKey, livekit.apiSecret, {
    identity: grant.identity,
    name: grant.identity,
    ttl: grant.ttlSeconds,
  });
  token.addGrant({
    roomJoin: true,
    room: grant.roomName,
    canPublish: true,
    canSubscribe: true,
    canPublishData: true,
  });
  token.roomConfig = new RoomConfiguration({
    agents: [new RoomAgentDispatch({ agentName: grant.agentName })],
  });
  return await token.toJwt();
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
  const listen = {
    hostname: Deno.env.get("HOST") ?? "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? 54321),
  };
  Deno.serve(listen, (req) => handleRequest(req, config));
}
