/** Page configuration, read from Vite's build-time environment. */

export interface AppConfig {
  readonly tokenEndpoint: string;
  readonly agentName: string;
  readonly agentJoinTimeoutMs: number;
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
  };
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
