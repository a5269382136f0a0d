import type { SupportedStorage } from '@supabase/supabase-js';
import type { AuthConfig } from '../config';
import { supabaseAuth } from '../lib/supabaseAuth';
import { sendJson, startServer, type TestServer } from './httpServer';

export const USER = { id: '5b0c7c8e-1d2f-4a3b-9c8d-7e6f5a4b3c2d', email: 'ada@example.com' };
export const PASSWORD = 'correct horse battery staple';
export const GUEST_ID = '0f9e8d7c-6b5a-4c3d-8e1f-a2b3c4d5e6f7';

/** The parts of a user object that Supabase Auth returns and supabase-js reads. */
function user(id: string, email: string | undefined, anonymous: boolean) {
  return {
    id,
    aud: 'authenticated',
    role: 'authenticated',
    ...(email === undefined ? {} : { email }),
    is_anonymous: anonymous,
    app_metadata: {},
    user_metadata: {},
    created_at: '2026-01-01T00:00:00Z',
  };
}

export function sessionFor(id: string, email: string | undefined, anonymous: boolean, accessToken: string) {
  return {
    access_token: accessToken,
    token_type: 'bearer',
    expires_in: 3600,
    expires_at: Math.floor(Date.now() / 1000) + 3600,
    refresh_token: `refresh-${id}`,
    user: user(id, email, anonymous),
  };
}

/**
 * A real HTTP server answering the three Supabase Auth requests the page makes (password
 * sign-in, anonymous sign-in, sign-out) in the shape Supabase Auth answers them; every
 * request is recorded so tests can also see what was never asked.
 */
export async function startAuthServer(): Promise<TestServer> {
  return startServer((req, body, res) => {
    const url = new URL(req.url ?? '/', 'http://auth.test');
    if (
      req.method === 'POST' &&
      url.pathname === '/auth/v1/token' &&
      url.searchParams.get('grant_type') === 'password'
    ) {
      const { email, password } = JSON.parse(body) as { email?: string; password?: string };
      if (email === USER.email && password === PASSWORD) {
        sendJson(res, 200, sessionFor(USER.id, USER.email, false, 'user-access-token'));
      } else {
        sendJson(res, 400, {
          code: 400,
          error_code: 'invalid_credentials',
          msg: 'Invalid login credentials',
        });
      }
      return;
    }
    if (req.method === 'POST' && url.pathname === '/auth/v1/signup') {
      sendJson(res, 200, sessionFor(GUEST_ID, undefined, true, 'guest-access-token'));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/auth/v1/logout') {
      res.writeHead(204).end();
      return;
    }
    sendJson(res, 404, { code: 404, error_code: 'not_found', msg: 'not here' });
  });
}

/** The project URL for a server from startAuthServer (its URL ends in the token function's path). */
export function projectUrl(server: TestServer): string {
  return new URL(server.url).origin;
}

export function authConfig(server: TestServer, allowGuests = false): AuthConfig {
  return { supabaseUrl: projectUrl(server), supabaseKey: 'sb_publishable_test', allowGuests };
}

/** Session storage in memory, so tests neither share nor leave anything in localStorage. */
export class MemoryStorage implements SupportedStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

let stores = 0;
/** A storage key of its own for every client: clients with one key talk over BroadcastChannel. */
export function uniqueStorageKey(): string {
  stores += 1;
  return `sb-test-${stores}-auth-token`;
}

export interface TestAuthOptions {
  readonly allowGuests?: boolean;
  readonly config?: AuthConfig;
  /** A session supabase-js finds in its storage when it starts. */
  readonly stored?: object;
}

/** The real supabase-js sign-in against `server`, with a storage of its own that tests can read. */
export function testAuth(server: TestServer, options: TestAuthOptions = {}) {
  const storage = new MemoryStorage();
  const storageKey = uniqueStorageKey();
  if (options.stored !== undefined) storage.setItem(storageKey, JSON.stringify(options.stored));
  const config = options.config ?? authConfig(server, options.allowGuests ?? false);
  return { service: supabaseAuth(config, { storage, storageKey }), config, storage, storageKey };
}
