/** Reading and validating the optional JSON body of a token request. */

import { NAME_PATTERN } from "./config.ts";
import { HttpError } from "./http.ts";

export const MAX_BODY_BYTES = 4096;

export interface TokenRequest {
  readonly agentName?: string;
  readonly roomName?: string;
}

const FIELDS = ["agentName", "roomName"] as const;
const NAME_RULE = "1-64 characters of A-Z, a-z, 0-9, _ or -";

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
  for await (const chunk of req.body) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
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
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw badRequest("request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

function validateFields(body: Record<string, unknown>): TokenRequest {
  const unknown = Object.keys(body).find((key) => !(FIELDS as readonly string[]).includes(key));
  if (unknown !== undefined) {
    const shown = JSON.stringify(unknown.slice(0, 64));
    throw badRequest(`unknown field ${shown}: only agentName and roomName are accepted`);
  }
  return {
    agentName: optionalName(body, "agentName"),
    roomName: optionalName(body, "roomName"),
  };
}

function optionalName(body: Record<string, unknown>, field: string): string | undefined {
  const raw = body[field];
  if (raw === undefined) return undefined;
  if (typeof raw !== "string") throw badRequest(`${field} must be a string`);
  if (!NAME_PATTERN.test(raw)) throw badRequest(`${field} must be ${NAME_RULE}`);
  return raw;
}
