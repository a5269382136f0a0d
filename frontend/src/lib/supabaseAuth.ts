/** Sign-in with Supabase Auth through supabase-js, which keeps and refreshes the session. */

import {
  type AuthError,
  createClient,
  isAuthRetryableFetchError,
  type Session,
  type SupportedStorage,
} from '@supabase/supabase-js';
import type { AuthConfig } from '../config';
import { type Account, type AuthService, SignInError } from './auth';

export interface SupabaseAuthOptions {
  /** Where the session is kept; the browser's localStorage by default. */
  readonly storage?: SupportedStorage;
  readonly storageKey?: string;
  readonly fetch?: typeof fetch;
}

export function accountOf(session: Session | null): Account | null {
  if (session === null) return null;
  const { user } = session;
  return { userId: user.id, email: user.email ?? null, anonymous: user.is_anonymous === true };
}

export function supabaseAuth(config: AuthConfig, options: SupabaseAuthOptions = {}): AuthService {
  const client = createClient(config.supabaseUrl, config.supabaseKey, {
    auth: {
      persistSession: true,
      autoRefreshToken: true,
      detectSessionInUrl: true,
      ...(options.storage === undefined ? {} : { storage: options.storage }),
      ...(options.storageKey === undefined ? {} : { storageKey: options.storageKey }),
    },
    ...(options.fetch === undefined ? {} : { global: { fetch: options.fetch } }),
  });
  const auth = client.auth;
  const failed = (error: AuthError): SignInError => new SignInError(describe(error, config.supabaseUrl));

  return {
    guestsAllowed: config.allowGuests,
    async currentAccount() {
      const { data } = await auth.getSession();
      return accountOf(data.session);
    },
    onAccountChange(listener) {
      const { data } = auth.onAuthStateChange((_event, session) => listener(accountOf(session)));
      return () => data.subscription.unsubscribe();
    },
    async signIn(email, password) {
      const { error } = await auth.signInWithPassword({ email, password });
      if (error !== null) throw failed(error);
    },
    async signInAsGuest() {
      if (!config.allowGuests) throw new SignInError('This page does not offer guest sign-in.');
      const { error } = await auth.signInAnonymously();
      if (error !== null) throw failed(error);
    },
    async signOut() {
      // Local: this browser is signed out at once, even when Supabase cannot be reached.
      await auth.signOut({ scope: 'local' });
    },
    async accessToken() {
      const { data } = await auth.getSession();
      return data.session?.access_token ?? null;
    },
  };
}

function describe(error: AuthError, supabaseUrl: string): string {
  if (isAuthRetryableFetchError(error)) {
    return `Can't reach the sign-in service at ${supabaseUrl}. Check your network, then try again.`;
  }
  if (error.code === 'invalid_credentials') return 'Wrong email or password.';
  if (error.code === 'anonymous_provider_disabled') {
    return 'Guest sign-in is turned off for this project: sign in with an account.';
  }
  return error.message.trim() === '' ? `Sign-in failed (HTTP ${error.status ?? '?'}).` : error.message;
}
