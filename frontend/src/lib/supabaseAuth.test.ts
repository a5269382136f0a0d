import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GUEST_ID, PASSWORD, sessionFor, startAuthServer, testAuth, USER } from '../test/authServer';
import { closedPort, type TestServer } from '../test/httpServer';
import { rejectionOf } from '../test/rejection';
import { type Account, SignInError } from './auth';

let server: TestServer;

beforeEach(async () => {
  server = await startAuthServer();
});
afterEach(async () => {
  await server.close();
});

function failureOf(promise: Promise<unknown>): Promise<SignInError> {
  return rejectionOf(promise, SignInError);
}

describe('supabaseAuth with supabase-js against a real HTTP server', () => {
  it('signs in with email and password and hands out the access token', async () => {
    const { service: auth, storage, storageKey } = testAuth(server);
    expect(await auth.currentAccount()).toBeNull();
    expect(await auth.accessToken()).toBeNull();

    await auth.signIn(USER.email, PASSWORD);
    const signIn = server.requests.find((r) => r.url.startsWith('/auth/v1/token'));
    expect(signIn?.url).toBe('/auth/v1/token?grant_type=password');
    expect(JSON.parse(signIn?.body ?? '')).toMatchObject({ email: USER.email, password: PASSWORD });
    expect(await auth.currentAccount()).toEqual({ userId: USER.id, email: USER.email, anonymous: false });
    expect(await auth.accessToken()).toBe('user-access-token');
    expect(JSON.parse(storage.getItem(storageKey) ?? '{}')).toMatchObject({
      access_token: 'user-access-token',
    });
  });

  it('says so when the email or password is wrong', async () => {
    const auth = testAuth(server).service;
    const err = await failureOf(auth.signIn(USER.email, 'wrong'));
    expect(err.message).toBe('Wrong email or password.');
    expect(await auth.currentAccount()).toBeNull();
  });

  it('names the sign-in service when it cannot be reached', async () => {
    const down = {
      supabaseUrl: `http://127.0.0.1:${await closedPort()}`,
      supabaseKey: 'k',
      allowGuests: false,
    };
    const err = await failureOf(testAuth(server, { config: down }).service.signIn(USER.email, PASSWORD));
    expect(err.message).toBe(
      `Can't reach the sign-in service at ${down.supabaseUrl}. Check your network, then try again.`,
    );
  });

  it('signs in a guest anonymously when guests are allowed', async () => {
    const auth = testAuth(server, { allowGuests: true }).service;
    expect(auth.guestsAllowed).toBe(true);
    await auth.signInAsGuest();
    expect(server.requests.map((r) => r.url)).toContain('/auth/v1/signup');
    expect(await auth.currentAccount()).toEqual({ userId: GUEST_ID, email: null, anonymous: true });
    expect(await auth.accessToken()).toBe('guest-access-token');
  });

  it('never asks for a guest sign-in when guests are not allowed', async () => {
    const auth = testAuth(server, { allowGuests: false }).service;
    expect(auth.guestsAllowed).toBe(false);
    await failureOf(auth.signInAsGuest());
    expect(server.requests).toHaveLength(0);
  });

  it('picks up a stored session without asking the server', async () => {
    const session = sessionFor(USER.id, USER.email, false, 'stored-token');
    const auth = testAuth(server, { stored: session }).service;
    expect(await auth.currentAccount()).toEqual({ userId: USER.id, email: USER.email, anonymous: false });
    expect(await auth.accessToken()).toBe('stored-token');
    expect(server.requests).toHaveLength(0);
  });

  it('signs out locally, tells listeners, and forgets the token', async () => {
    const { service: auth, storage, storageKey } = testAuth(server);
    const seen: Array<Account | null> = [];
    const unsubscribe = auth.onAccountChange((account) => seen.push(account));
    await auth.signIn(USER.email, PASSWORD);
    await auth.signOut();
    unsubscribe();
    expect(seen.at(-2)).toEqual({ userId: USER.id, email: USER.email, anonymous: false });
    expect(seen.at(-1)).toBeNull();
    expect(await auth.accessToken()).toBeNull();
    expect(storage.getItem(storageKey)).toBeNull();
    expect(server.requests.at(-1)?.url).toBe('/auth/v1/logout?scope=local');
    expect(server.requests.at(-1)?.authorization).toBe('Bearer user-access-token');
  });
});
