/** Server configuration for the livekit-token function, read once from the environment. */

/** Names accepted for LiveKit agents and rooms: what LiveKit and the VoiceAgent CRD both allow. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const NAME_RULE = "1-64 characters of A-Z, a-z, 0-9, _ or -";

export const DEFAULT_AGENT_NAME = "voicefleet-demo";
export const DEFAULT_TTL_SECONDS = 600;
/** Tokens never outlive 15 minutes; a leaked token is only useful briefly. */
export const MAX_TTL_SECONDS = 900;
export const DEFAULT_INVITE_TTL_SECONDS = 300;
/** A dedicated invite secret must be at least this long to be worth more than none. */
export const MIN_INVITE_SECRET_LENGTH = 32;
/** Supabase puts this audience in every signed-in user's access token. */
export const DEFAULT_AUDIENCE = "authenticated";

export interface LiveKitSettings {
  readonly url: string;
  readonly apiKey: string;
  readonly apiSecret: string;
}

/** How Supabase access tokens are verified; a null key source means that kind is refused. */
export interface AuthSettings {
  /** Legacy HS256 secret of the project. */
  readonly jwtSecret: string | null;
  /** JSON Web Key Set of the project's asymmetric signing keys (ES256, RS256). */
  readonly jwksUrl: string | null;
  /** Required `iss`; null skips the check (no SUPABASE_URL nor SUPABASE_JWT_ISSUER). */
  readonly issuer: string | null;
  readonly audience: string;
}

/** What LiveKit enforces on a room created by one of our tokens. */
export interface RoomSettings {
  /** Callers one room may hold: the one who started the call and those they invited. */
  readonly maxCallers: number;
  readonly maxParticipants: number;
  readonly emptyTimeoutSeconds: number;
  readonly departureTimeoutSeconds: number;
}

/** Each limit of 0 is off. */
export interface LimitSettings {
  readonly windowSeconds: number;
  readonly perIdentity: number;
  readonly perAddress: number;
  readonly concurrentCalls: number;
  /** How long one issued token holds one of its caller's concurrent-call slots. */
  readonly callSlotSeconds: number;
}

/** Where the caller's address comes from when the function sits behind proxies. */
export interface ProxySettings {
  /** Proxies in front of the function that append to `header`; 0 trusts no header. */
  readonly trustedHops: number;
  readonly header: string;
}

/** Invite codes that let callers into a call already going; off while maxCallers is 1. */
export interface InviteSettings {
  readonly ttlSeconds: number;
  /** INVITE_SECRET; null signs codes with a key derived from the LiveKit API secret. */
  readonly secret: string | null;
}

export interface Config {
  /** Null when any LiveKit variable is missing or invalid; see `problems`. */
  readonly livekit: LiveKitSettings | null;
  readonly auth: AuthSettings;
  readonly allowGuests: boolean;
  /** Agents a caller may ask for; the first is dispatched when the request names none. */
  readonly agentNames: readonly string[];
  readonly tokenTtlSeconds: number;
  readonly room: RoomSettings;
  readonly invites: InviteSettings;
  readonly limits: LimitSettings;
  readonly proxy: ProxySettings;
  /** Exact origins such as https://app.example.com; empty refuses every cross-origin request. */
  readonly corsAllowedOrigins: readonly string[];
  /** Configuration mistakes, each naming its variable and never its value. */
  readonly problems: readonly string[];
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads every setting up front so a request never sees a half-read configuration. */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const livekit = readLiveKit(env, problems);
  const auth = readAuth(env, problems);
  const allowGuests = readBoolean(env, "ALLOW_GUESTS", false, problems);
  if (!allowGuests && auth.jwtSecret === null && auth.jwksUrl === null) {
    problems.push(
      "ALLOW_GUESTS is false but no key verifies users: set SUPABASE_URL, SUPABASE_JWKS_URL " +
        "or SUPABASE_JWT_SECRET (or set ALLOW_GUESTS=true)",
    );
  }
  const tokenTtlSeconds = readTtl(env, problems);
  const number = (name: string, fallback: number, min: number) =>
    readInteger(env, name, fallback, min, problems);
  const config = {
    auth,
    allowGuests,
    agentNames: readAgentNames(env, problems),
    tokenTtlSeconds,
    room: readRoom(env, problems),
    invites: {
      ttlSeconds: Math.min(
        number("INVITE_TTL_SECONDS", DEFAULT_INVITE_TTL_SECONDS, 1),
        MAX_TTL_SECONDS,
      ),
      secret: readInviteSecret(env, problems),
    },
    limits: {
      windowSeconds: number("RATE_LIMIT_WINDOW_SECONDS", 60, 1),
      perIdentity: number("RATE_LIMIT_PER_IDENTITY", 10, 0),
      perAddress: number("RATE_LIMIT_PER_ADDRESS", 30, 0),
      concurrentCalls: number("MAX_CONCURRENT_CALLS", 3, 0),
      callSlotSeconds: number("CALL_SLOT_SECONDS", tokenTtlSeconds, 1),
    },
    proxy: {
      trustedHops: number("TRUST_PROXY", 0, 0),
      header: readHeaderName(env, problems),
    },
    corsAllowedOrigins: readOrigins(env, problems),
    problems,
  };
  // Read last, so that any mistake anywhere keeps the function from minting tokens.
  return { ...config, livekit: problems.length === 0 ? livekit : null };
}

/**
 * The callers, the agent, and one seat so a replacement agent can join while a failed one is
 * still being timed out: ROOM_MAX_PARTICIPANTS defaults to ROOM_MAX_CALLERS + 2.
 */
function readRoom(env: Env, problems: string[]): RoomSettings {
  const maxCallers = readInteger(env, "ROOM_MAX_CALLERS", 1, 1, problems);
  const maxParticipants = readInteger(env, "ROOM_MAX_PARTICIPANTS", maxCallers + 2, 2, problems);
  if (maxParticipants < maxCallers + 1) {
    problems.push(
      `ROOM_MAX_PARTICIPANTS must leave a seat for the agent: at least ROOM_MAX_CALLERS + 1 (${
        maxCallers + 1
      })`,
    );
  }
  return {
    maxCallers,
    maxParticipants,
    emptyTimeoutSeconds: readInteger(env, "ROOM_EMPTY_TIMEOUT_SECONDS", 60, 1, problems),
    departureTimeoutSeconds: readInteger(env, "ROOM_DEPARTURE_TIMEOUT_SECONDS", 10, 1, problems),
  };
}

function readInviteSecret(env: Env, problems: string[]): string | null {
  const secret = value(env, "INVITE_SECRET");
  if (secret === undefined) return null;
  if (secret.length < MIN_INVITE_SECRET_LENGTH) {
    problems.push(`INVITE_SECRET must be at least ${MIN_INVITE_SECRET_LENGTH} characters`);
  }
  return secret;
}

function value(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw ? raw : undefined;
}

function required(env: Env, name: string, problems: string[]): string {
  const found = value(env, name);
  if (found === undefined) problems.push(`${name} is not set`);
  return found ?? "";
}

function readLiveKit(env: Env, problems: string[]): LiveKitSettings {
  const url = required(env, "LIVEKIT_URL", problems);
  if (url && !/^(wss?|https?):\/\/[^\s/]+/.test(url)) {
    problems.push("LIVEKIT_URL must be a ws://, wss://, http:// or https:// URL");
  }
  return {
    url,
    apiKey: required(env, "LIVEKIT_API_KEY", problems),
    apiSecret: required(env, "LIVEKIT_API_SECRET", problems),
  };
}

/**
 * SUPABASE_URL (set by Supabase in every function) gives both the key set and the issuer of the
 * project's tokens. The explicit variables exist because the local CLI's SUPABASE_URL is an
 * internal address while its tokens name the public one. Supabase refuses secrets whose names
 * start with SUPABASE_, so each also has an AUTH_ name.
 */
function readAuth(env: Env, problems: string[]): AuthSettings {
  const either = (suffix: string) =>
    value(env, `SUPABASE_${suffix}`) === undefined ? `AUTH_${suffix}` : `SUPABASE_${suffix}`;
  const project = readUrl(env, "SUPABASE_URL", problems)?.replace(/\/+$/, "");
  const jwksUrl = readUrl(env, either("JWKS_URL"), problems) ??
    (project === undefined ? undefined : `${project}/auth/v1/.well-known/jwks.json`);
  const issuer = value(env, either("JWT_ISSUER")) ??
    (project === undefined ? undefined : `${project}/auth/v1`);
  return {
    jwtSecret: value(env, either("JWT_SECRET")) ?? null,
    jwksUrl: jwksUrl ?? null,
    issuer: issuer ?? null,
    audience: value(env, either("JWT_AUDIENCE")) ?? DEFAULT_AUDIENCE,
  };
}

function readUrl(env: Env, name: string, problems: string[]): string | undefined {
  const raw = value(env, name);
  if (raw === undefined) return undefined;
  if (/^https?:\/\/[^\s/]+/.test(raw) && URL.canParse(raw)) return raw;
  problems.push(`${name} must be an http:// or https:// URL`);
  return undefined;
}

function readBoolean(env: Env, name: string, fallback: boolean, problems: string[]): boolean {
  const raw = value(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "false") return raw === "true";
  problems.push(`${name} must be true or false`);
  return fallback;
}

function readInteger(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  problems: string[],
): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const parsed = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (Number.isNaN(parsed) || parsed < min) {
    problems.push(`${name} must be a whole number, at least ${min}`);
    return fallback;
  }
  return parsed;
}

/**
 * LIVEKIT_AGENT_NAME is the default agent; LIVEKIT_AGENT_NAMES lists every agent a caller may
 * ask for by name. Either alone is enough; the default is always allowed.
 */
function readAgentNames(env: Env, problems: string[]): string[] {
  const single = value(env, "LIVEKIT_AGENT_NAME");
  const listed = (value(env, "LIVEKIT_AGENT_NAMES") ?? "").split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (single !== undefined && !NAME_PATTERN.test(single)) {
    problems.push(`LIVEKIT_AGENT_NAME must be ${NAME_RULE}`);
  }
  const bad = listed.findIndex((entry) => !NAME_PATTERN.test(entry));
  if (bad >= 0) problems.push(`LIVEKIT_AGENT_NAMES entry ${bad + 1} must be ${NAME_RULE}`);
  const names = [single, ...listed].filter((n): n is string => n !== undefined);
  const valid = [...new Set(names.filter((n) => NAME_PATTERN.test(n)))];
  return valid.length > 0 ? valid : [DEFAULT_AGENT_NAME];
}

function readTtl(env: Env, problems: string[]): number {
  const raw = value(env, "TOKEN_TTL_SECONDS");
  if (raw === undefined) return DEFAULT_TTL_SECONDS;
  const seconds = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 1) {
    problems.push("TOKEN_TTL_SECONDS must be a whole number of seconds, at least 1");
    return DEFAULT_TTL_SECONDS;
  }
  return Math.min(seconds, MAX_TTL_SECONDS);
}

function readHeaderName(env: Env, problems: string[]): string {
  const name = value(env, "CLIENT_IP_HEADER")?.toLowerCase() ?? "x-forwarded-for";
  if (/^[a-z0-9-]{1,64}$/.test(name)) return name;
  problems.push("CLIENT_IP_HEADER must be a header name such as x-forwarded-for");
  return "x-forwarded-for";
}

/** No wildcard: a page may only ask for tokens when the deployer named its origin. */
function readOrigins(env: Env, problems: string[]): string[] {
  const entries = (value(env, "CORS_ALLOWED_ORIGINS") ?? "").split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    // A page URL's root ("http://127.0.0.1:5173/") names its origin well enough.
    .map((entry) => isOrigin(entry.replace(/\/$/, "")) ? entry.replace(/\/$/, "") : entry);
  if (entries.includes("*")) {
    problems.push(
      'CORS_ALLOWED_ORIGINS does not accept "*": list the origins of your pages, like https://app.example.com',
    );
  }
  const bad = entries.findIndex((entry) => entry !== "*" && !isOrigin(entry));
  if (bad >= 0) {
    problems.push(
      `CORS_ALLOWED_ORIGINS entry ${bad + 1} is not an origin like https://app.example.com`,
    );
  }
  return entries.filter(isOrigin);
}

/** An origin is scheme://host[:port] with nothing after it, as browsers send it. */
function isOrigin(entry: string): boolean {
  try {
    const url = new URL(entry);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === entry;
  } catch {
    return false;
  }
}
