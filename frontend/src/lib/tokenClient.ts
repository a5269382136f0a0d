/** Asks the livekit-token function for the credentials of one call. */

export interface ConnectionDetails {
  readonly serverUrl: string;
  readonly roomName: string;
  readonly participantName: string;
  readonly participantToken: string;
  readonly expiresAt: string;
}

/** The agent to dispatch; the function names the room, so no call can join another's. */
export interface TokenRequest {
  readonly agentName: string;
  /**
   * An invite code from a caller in a call: the token is for their room instead, whose agent
   * is already there, so no agent name is sent.
   */
  readonly inviteCode?: string | undefined;
  /** The signed-in user's Supabase access token; absent on a page without sign-in. */
  readonly accessToken?: string | undefined;
}

/** Asks for an invite code to the room of the caller's own call. */
export interface InviteRequest {
  /** The caller's LiveKit token for the call: the one issued, or a refreshed one. */
  readonly participantToken: string;
  readonly accessToken?: string | undefined;
}

/** An invite code to the caller's room; anyone who has it may join until `expiresAt`. */
export interface InviteDetails {
  readonly inviteCode: string;
  readonly roomName: string;
  readonly expiresAt: string;
}

export type TokenFailure = 'unreachable' | 'rejected' | 'invalid-response';

/** Why no token came back; `status` is set when the endpoint answered with an error. */
export class TokenRequestError extends Error {
  constructor(
    readonly failure: TokenFailure,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'TokenRequestError';
  }
}

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface TokenClientOptions {
  readonly fetch?: FetchLike;
  /** Give up on an endpoint that accepts the connection but never answers. */
  readonly timeoutMs?: number;
}

export const DEFAULT_TOKEN_TIMEOUT_MS = 10_000;

export async function requestConnectionDetails(
  endpoint: string,
  request: TokenRequest,
  options: TokenClientOptions = {},
): Promise<ConnectionDetails> {
  const answer = await post(
    endpoint,
    { accessToken: request.accessToken, body: requestBody(request) },
    options,
  );
  return parseConnectionDetails(answer);
}

export async function requestInviteCode(
  endpoint: string,
  request: InviteRequest,
  options: TokenClientOptions = {},
): Promise<InviteDetails> {
  const answer = await post(
    endpoint,
    { accessToken: request.accessToken, body: inviteBody(request) },
    options,
  );
  return parseInviteDetails(answer);
}

/** One request to the function: the JSON body, and the user's access token for the header. */
interface Post {
  readonly accessToken: string | undefined;
  readonly body: Record<string, string>;
}

/** The endpoint's JSON answer; a refusal throws with the endpoint's own message. */
async function post(endpoint: string, request: Post, options: TokenClientOptions): Promise<unknown> {
  const response = await send(endpoint, request, options);
  const text = await response.text();
  if (!response.ok) {
    throw new TokenRequestError('rejected', describeRejection(response.status, text), response.status);
  }
  return parseJson(text);
}

async function send(endpoint: string, request: Post, options: TokenClientOptions): Promise<Response> {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = options.timeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await doFetch(endpoint, {
      method: 'POST',
      headers: requestHeaders(request.accessToken),
      body: JSON.stringify(request.body),
      signal: controller.signal,
    });
  } catch {
    const why = controller.signal.aborted
      ? `did not answer within ${timeoutMs / 1000} s`
      : 'could not be reached';
    throw new TokenRequestError('unreachable', `The token endpoint ${why}.`);
  } finally {
    clearTimeout(timer);
  }
}

export function requestHeaders(accessToken: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (accessToken !== undefined) headers.Authorization = `Bearer ${accessToken}`;
  return headers;
}

/** Only the fields the function accepts: it rejects unknown ones. The token goes in a header. */
export function requestBody(request: TokenRequest): Record<string, string> {
  if (request.inviteCode !== undefined) return { invite_code: request.inviteCode };
  return { agentName: request.agentName };
}

export function inviteBody(request: InviteRequest): Record<string, string> {
  return { invite_with_token: request.participantToken };
}

/** Prefers the endpoint's own `{"error": ...}` text, which says what to fix. */
export function describeRejection(status: number, body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed) && typeof parsed.error === 'string' && parsed.error.trim() !== '') {
      return parsed.error;
    }
  } catch {
    // Not JSON: a proxy or gateway answered; fall through to the status line.
  }
  return `The token endpoint answered HTTP ${status} without an error message.`;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new TokenRequestError('invalid-response', 'The token endpoint did not answer with JSON.');
  }
}

const REQUIRED_FIELDS = [
  'serverUrl',
  'roomName',
  'participantName',
  'participantToken',
  'expiresAt',
] as const;

export function parseConnectionDetails(value: unknown): ConnectionDetails {
  if (!isRecord(value)) {
    throw new TokenRequestError(
      'invalid-response',
      'The token endpoint answered with something other than a JSON object.',
    );
  }
  const missing = REQUIRED_FIELDS.filter((field) => typeof value[field] !== 'string' || value[field] === '');
  if (missing.length > 0) {
    throw new TokenRequestError(
      'invalid-response',
      `The token endpoint's answer lacks ${missing.join(', ')}.`,
    );
  }
  const details = value as Record<(typeof REQUIRED_FIELDS)[number], string>;
  if (!/^(wss?|https?):\/\//.test(details.serverUrl)) {
    throw new TokenRequestError(
      'invalid-response',
      'The token endpoint gave a serverUrl that is not a LiveKit URL.',
    );
  }
  return {
    serverUrl: details.serverUrl,
    roomName: details.roomName,
    participantName: details.participantName,
    participantToken: details.participantToken,
    expiresAt: details.expiresAt,
  };
}

export function parseInviteDetails(value: unknown): InviteDetails {
  const fields = ['inviteCode', 'roomName', 'expiresAt'] as const;
  if (!isRecord(value) || fields.some((field) => typeof value[field] !== 'string' || value[field] === '')) {
    throw new TokenRequestError(
      'invalid-response',
      "The token endpoint's answer to an invite lacks inviteCode, roomName or expiresAt.",
    );
  }
  const details = value as Record<(typeof fields)[number], string>;
  if (Number.isNaN(Date.parse(details.expiresAt))) {
    throw new TokenRequestError(
      'invalid-response',
      'The token endpoint gave an invite expiry that is not a time.',
    );
  }
  return { inviteCode: details.inviteCode, roomName: details.roomName, expiresAt: details.expiresAt };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
