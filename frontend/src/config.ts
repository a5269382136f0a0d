/** Page configuration, read from Vite's build-time environment. */

export interface AppConfig {
  readonly tokenEndpoint: string;
  readonly agentName: string;
  readonly agentJoinTimeoutMs: number;
  /** Sign-in with Supabase Auth; null for a page without sign-in (the keyless local demo). */
  readonly auth: AuthConfig | null;
}

export interface AuthConfig {
  /** The Supabase project, e.g. https://<ref>.supabase.co. */
  readonly supabaseUrl: string;
  /** The project's publishable key (sb_publishable_…) or its legacy anon key. */
  readonly supabaseKey: string;
  /** Offer "Continue as guest" (Supabase anonymous sign-in). The token function must allow guests too. */
  readonly allowGuests: boolean;
}

export type EnvSource = Readonly<Record<string, string | boolean | undefined>>;

export const DEFAULT_TOKEN_ENDPOINT = 'http://127.0.0.1:54321/functions/v1/livekit-token';
export const DEFAULT_AGENT_NAME = 'voicefleet-demo';
export const DEFAULT_AGENT_JOIN_TIMEOUT_MS = 15_000;

const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const NAME_RULE = '1-64 characters of A-Z, a-z, 0-9, _ or -';

/** A setting the page cannot work with; the message names the variable to fix. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function text(env: EnvSource, name: string): string | undefined {
  const raw = env[name];
  if (typeof raw !== 'string') return undefined;
  const trimmed = raw.trim();
  return trimmed === '' ? undefined : trimmed;
}

export function readConfig(env: EnvSource): AppConfig {
  return {
    tokenEndpoint: readEndpoint(env),
    agentName: readName(env, 'VITE_AGENT_NAME') ?? DEFAULT_AGENT_NAME,
    agentJoinTimeoutMs: readTimeout(env),
    auth: readAuth(env),
  };
}

/**
 * Supabase names the browser's key "publishable" now; projects made before that still hand
 * out the JWT-shaped anon key, which works the same way here.
 */
function readAuth(env: EnvSource): AuthConfig | null {
  const url = text(env, 'VITE_SUPABASE_URL');
  const keyName =
    text(env, 'VITE_SUPABASE_PUBLISHABLE_KEY') === undefined
      ? 'VITE_SUPABASE_ANON_KEY'
      : 'VITE_SUPABASE_PUBLISHABLE_KEY';
  const key = text(env, keyName);
  const allowGuests = readBoolean(env, 'VITE_ALLOW_GUESTS');
  if (url === undefined && key === undefined) {
    if (allowGuests) {
      throw new ConfigError(
        'VITE_ALLOW_GUESTS offers anonymous sign-in, which needs VITE_SUPABASE_URL and VITE_SUPABASE_PUBLISHABLE_KEY',
      );
    }
    return null;
  }
  if (url === undefined) {
    throw new ConfigError(`VITE_SUPABASE_URL is not set but ${keyName} is: set both for sign-in, or neither`);
  }
  if (key === undefined) {
    throw new ConfigError(
      'VITE_SUPABASE_PUBLISHABLE_KEY is not set but VITE_SUPABASE_URL is: set both for sign-in, or neither',
    );
  }
  if (!/^https?:\/\/[^\s/]+/.test(url) || !URL.canParse(url)) {
    throw new ConfigError(
      'VITE_SUPABASE_URL must be an http:// or https:// URL, like https://<ref>.supabase.co',
    );
  }
  if (/\s/.test(key)) throw new ConfigError(`${keyName} must not contain spaces`);
  return { supabaseUrl: url.replace(/\/+$/, ''), supabaseKey: key, allowGuests };
}

function readBoolean(env: EnvSource, name: string): boolean {
  const raw = env[name];
  if (typeof raw === 'boolean') return raw;
  const value = text(env, name)?.toLowerCase();
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new ConfigError(`${name} must be true or false`);
}

function readEndpoint(env: EnvSource): string {
  const raw = text(env, 'VITE_TOKEN_ENDPOINT') ?? DEFAULT_TOKEN_ENDPOINT;
  let url: URL;
  try {
    // Relative paths are allowed so a deployment can proxy the function under its own origin.
    url = new URL(raw, 'http://relative.invalid');
  } catch {
    throw new ConfigError('VITE_TOKEN_ENDPOINT is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('VITE_TOKEN_ENDPOINT must be an http:// or https:// URL');
  }
  return raw;
}

function readName(env: EnvSource, name: string): string | undefined {
  const raw = text(env, name);
  if (raw !== undefined && !NAME_PATTERN.test(raw)) {
    throw new ConfigError(`${name} must be ${NAME_RULE}`);
  }
  return raw;
}

function readTimeout(env: EnvSource): number {
  const raw = text(env, 'VITE_AGENT_JOIN_TIMEOUT_MS');
  if (raw === undefined) return DEFAULT_AGENT_JOIN_TIMEOUT_MS;
  const ms = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 1000 || ms > 600_000) {
    throw new ConfigError(
      'VITE_AGENT_JOIN_TIMEOUT_MS must be a whole number of milliseconds from 1000 to 600000',
    );
  }
  return ms;
}
