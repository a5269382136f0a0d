/**
 * What the page needs of sign-in: who is signed in, a way in and out, and the user's access
 * token, which the token function verifies before it issues a call. `supabaseAuth.ts` provides
 * it with Supabase Auth; it is loaded only when the page is configured with a project.
 */

export interface Account {
  readonly userId: string;
  /** Null for an anonymous sign-in. */
  readonly email: string | null;
  /** A Supabase anonymous sign-in: the token function counts it as a guest. */
  readonly anonymous: boolean;
}

export interface AuthService {
  /** Whether the page offers "Continue as guest". */
  readonly guestsAllowed: boolean;
  /** Who is signed in now, from the session supabase-js keeps; null when nobody is. */
  currentAccount(): Promise<Account | null>;
  /** Called on every sign-in, sign-out and expiry; returns the unsubscribe function. */
  onAccountChange(listener: (account: Account | null) => void): () => void;
  signIn(email: string, password: string): Promise<void>;
  signInAsGuest(): Promise<void>;
  signOut(): Promise<void>;
  /** A current access token (refreshed first when close to expiry), or null when signed out. */
  accessToken(): Promise<string | null>;
}

/** A sign-in that did not succeed; the message says what to do. */
export class SignInError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignInError';
  }
}
