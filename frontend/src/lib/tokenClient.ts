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
  /** The signed-in user's Supabase access token; absent on a page without sign-in. */
  readonly accessToken?: string | undefined;
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
  const response = await post(endpoint, request, options);
  const body = await response.text();
  if (!response.ok) {
    throw new TokenRequestError('rejected', describeRejection(response.status, body), response.status);
  }
  return parseConnectionDetails(parseJson(body));
}

async function post(endpoint: string, request: TokenRequest, options: TokenClientOptions): Promise<Response> {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = options.timeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await doFetch(endpoint, {
      method: 'POST',
      headers: requestHeaders(request),
      body: JSON.stringify(requestBody(request)),
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

export function requestHeaders(request: TokenRequest): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (request.accessToken !== undefined) headers.Authorization = `Bearer ${request.accessToken}`;
  return headers;
}

/** Only the fields the function accepts: it rejects unknown ones. The token goes in a header. */
export function requestBody(request: TokenRequest): Record<string, string> {
  return { agentName: request.agentName };
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
