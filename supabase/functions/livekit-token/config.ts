/** Server configuration for the livekit-token function, read once from the environment. */

/** Names accepted for LiveKit agents and rooms: what LiveKit and the VoiceAgent CRD both allow. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export const DEFAULT_AGENT_NAME = "voicefleet-demo";
export const DEFAULT_TTL_SECONDS = 600;
/** Tokens never outlive 15 minutes; a leaked token is only useful briefly. */
export const MAX_TTL_SECONDS = 900;

export interface LiveKitSettings {
  readonly url: string;
  readonly apiKey: string;
  readonly apiSecret: string;
}

export interface Config {
  /** Null when any LiveKit variable is missing or invalid; see `problems`. */
  readonly livekit: LiveKitSettings | null;
  /** Secret that verifies HS256 Supabase user JWTs; null when not configured. */
  readonly jwtSecret: string | null;
  readonly allowGuests: boolean;
  readonly defaultAgentName: string;
  readonly tokenTtlSeconds: number;
  /** "*" or exact origins such as https://app.example.com. */
  readonly corsAllowedOrigins: readonly string[];
  /** Configuration mistakes, each naming its variable and never its value. */
  readonly problems: readonly string[];
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads every setting up front so a request never sees a half-read configuration. */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const livekit = readLiveKit(env, problems);
  return {
    livekit: problems.length === 0 ? livekit : null,
    jwtSecret: readJwtSecret(env),
    allowGuests: readBoolean(env, "ALLOW_GUESTS", true, problems),
    defaultAgentName: readAgentName(env, problems),
    tokenTtlSeconds: readTtl(env, problems),
    corsAllowedOrigins: readOrigins(env, problems),
    problems,
  };
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

/** Hosted Supabase reserves the SUPABASE_ prefix for its own secrets, hence the second name. */
function readJwtSecret(env: Env): string | null {
  return value(env, "SUPABASE_JWT_SECRET") ?? value(env, "AUTH_JWT_SECRET") ?? null;
}

function readBoolean(env: Env, name: string, fallback: boolean, problems: string[]): boolean {
  const raw = value(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "false") return raw === "true";
  problems.push(`${name} must be true or false`);
  return fallback;
}

function readAgentName(env: Env, problems: string[]): string {
  const name = value(env, "LIVEKIT_AGENT_NAME") ?? DEFAULT_AGENT_NAME;
  if (NAME_PATTERN.test(name)) return name;
  problems.push("LIVEKIT_AGENT_NAME must be 1-64 characters of A-Z, a-z, 0-9, _ or -");
  return DEFAULT_AGENT_NAME;
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

function readOrigins(env: Env, problems: string[]): string[] {
  const entries = (value(env, "CORS_ALLOWED_ORIGINS") ?? "*").split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  const bad = entries.findIndex((entry) => entry !== "*" && !isOrigin(entry));
  if (bad >= 0) {
    problems.push(
      `CORS_ALLOWED_ORIGINS entry ${bad + 1} is not "*" or an origin like https://app.example.com`,
    );
    return entries.filter((entry) => entry === "*" || isOrigin(entry));
  }
  return entries.length > 0 ? entries : ["*"];
}

/** An origin is scheme://host[:port] with nothing after it, as browsers send it. */
function isOrigin(entry: string): boolean {
  try {
    return new URL(entry).origin === entry;
  } catch {
    return false;
  }
}
