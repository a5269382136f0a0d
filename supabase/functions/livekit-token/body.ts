/**
 * Reading and validating the optional JSON body of a token request.
 *
 * Two shapes are understood: voicefleet's own `{"agentName": ...}`, and LiveKit's standard
 * token-endpoint request (what a `TokenSource.endpoint` client sends), whose agent arrives as
 * `room_config.agents[0].agent_name`. Protobuf JSON allows either snake_case or camelCase
 * names, so both are read. Fields the server decides (room, identity, metadata, room limits)
 * are refused by name rather than ignored, so a client never believes it chose them.
 *
 * Two more requests concern invites: `invite_with_token` (the caller's own participant token)
 * asks for an invite code to the caller's room, and `invite_code` exchanges a code for a token
 * to the room it names.
 */

import { NAME_PATTERN, NAME_RULE } from "./config.ts";
import { HttpError } from "./http.ts";

export const MAX_BODY_BYTES = 4096;

export interface TokenRequest {
  readonly agentName?: string;
  /** Display name shown to others in the room; the identity always comes from the sign-in. */
  readonly participantName?: string;
  /** Join the room of this invite code instead of starting a call. */
  readonly inviteCode?: string;
  /** Ask for an invite code to the room of this participant token (the caller's own). */
  readonly inviteWithToken?: string;
}

const ACCEPTED = [
  "agentName",
  "participant_name",
  "room_config",
  "invite_code",
  "invite_with_token",
];

/** Fields of the standard request that only the server sets, with the reason given back. */
const REFUSED: Record<string, string> = {
  room_name: "the server creates a new room for each call and answers with its roomName",
  participant_identity: "the identity comes from your sign-in",
  participant_metadata: "participant metadata is set by the server",
  participant_attributes: "participant attributes are set by the server",
};

const ROOM_CONFIG_REFUSAL = "the room's limits are set by the server";
const DISPLAY_NAME = /^[^\p{Cc}\p{Cf}]{1,64}$/u;

function badRequest(message: string): HttpError {
  return new HttpError(400, message);
}

/** Reads at most MAX_BODY_BYTES, stopping early so a huge body costs nothing. */
export async function readBody(req: Request): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  if (req.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of req.body) {
      size += chunk.byteLength;
      if (size > MAX_BODY_BYTES) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    // The client went away or sent a broken stream: its fault, not the server's.
    throw badRequest("request body could not be read");
  }
  return concat(chunks, size);
}

function tooLarge(): HttpError {
  return badRequest(`request body is too large: the limit is ${MAX_BODY_BYTES} bytes`);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** Turns raw body bytes into a validated request; an empty body asks for all defaults. */
export function parseTokenRequest(bytes: Uint8Array, contentType: string | null): TokenRequest {
  const text = decodeUtf8(bytes);
  if (text.trim() === "") return {};
  if (!isJsonMediaType(contentType)) {
    throw badRequest("Content-Type must be application/json");
  }
  return validateFields(parseObject(text));
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw badRequest("request body is not valid UTF-8");
  }
}

function isJsonMediaType(contentType: string | null): boolean {
  const media = contentType?.split(";")[0].trim().toLowerCase();
  return media === "application/json";
}

function parseObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest("request body is not valid JSON");
  }
  if (!isRecord(parsed)) throw badRequest("request body must be a JSON object");
  return parsed;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `participantName` and `participant_name` are one field; the standard name is used inside. */
function snakeCase(key: string): string {
  return key === "agentName" ? key : key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function shown(key: string): string {
  return JSON.stringify(key.slice(0, 64));
}

function validateFields(body: Record<string, unknown>): TokenRequest {
  const fields = new Map<string, unknown>();
  for (const [key, raw] of Object.entries(body)) {
    const name = snakeCase(key);
    if (Object.hasOwn(REFUSED, name)) {
      throw badRequest(`${key} is not accepted: ${REFUSED[name]}`);
    }
    if (!ACCEPTED.includes(name)) {
      throw badRequest(
        `unknown field ${
          shown(key)
        }: only agentName, participant_name, room_config, invite_code and invite_with_token are accepted`,
      );
    }
    if (fields.has(name)) throw badRequest(`field ${shown(key)} is given twice`);
    fields.set(name, raw);
  }
  if (fields.has("invite_with_token")) {
    if (fields.size > 1) {
      throw badRequest("invite_with_token asks for an invite code and takes no other field");
    }
    return { inviteWithToken: nonEmpty(fields.get("invite_with_token"), "invite_with_token") };
  }
  if (fields.has("invite_code")) {
    if (fields.has("agentName") || fields.has("room_config")) {
      throw badRequest(
        "invite_code joins the agent already in the invite's room: agentName and room_config are not accepted with it",
      );
    }
    return {
      inviteCode: nonEmpty(fields.get("invite_code"), "invite_code"),
      participantName: displayName(fields.get("participant_name")),
    };
  }
  const direct = optionalName(fields.get("agentName"), "agentName");
  const configured = roomConfigAgent(fields.get("room_config"));
  if (direct !== undefined && configured !== undefined && direct !== configured) {
    throw badRequest("agentName and room_config name different agents");
  }
  return {
    agentName: direct ?? configured,
    participantName: displayName(fields.get("participant_name")),
  };
}

function nonEmpty(raw: unknown, field: string): string {
  if (typeof raw !== "string" || raw.trim() === "") {
    throw badRequest(`${field} must be a non-empty string`);
  }
  return raw.trim();
}

function optionalName(raw: unknown, field: string): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== "string") throw badRequest(`${field} must be a string`);
  if (!NAME_PATTERN.test(raw)) throw badRequest(`${field} must be ${NAME_RULE}`);
  return raw;
}

function displayName(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== "string" || !DISPLAY_NAME.test(raw)) {
    throw badRequest("participant_name must be 1-64 characters without control characters");
  }
  return raw;
}

/** The one agent a standard request may ask for; every other room setting is the server's. */
function roomConfigAgent(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  if (!isRecord(raw)) throw badRequest("room_config must be a JSON object");
  for (const key of Object.keys(raw)) {
    if (key !== "agents") {
      throw badRequest(`room_config field ${shown(key)} is not accepted: ${ROOM_CONFIG_REFUSAL}`);
    }
  }
  const agents = raw.agents;
  if (agents === undefined) return undefined;
  if (!Array.isArray(agents) || agents.length > 1) {
    throw badRequest("room_config.agents must be a list of at most one agent");
  }
  if (agents.length === 0) return undefined;
  const agent: unknown = agents[0];
  if (!isRecord(agent)) throw badRequest("room_config.agents[0] must be a JSON object");
  let name: unknown;
  for (const [key, value] of Object.entries(agent)) {
    if (key !== "agent_name" && key !== "agentName") {
      throw badRequest(
        `room_config.agents[0] field ${shown(key)} is not accepted: only agent_name is`,
      );
    }
    if (name !== undefined) throw badRequest("room_config.agents[0].agent_name is given twice");
    name = value;
  }
  return optionalName(name, "room_config.agents[0].agent_name");
}
