import { act, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from './App';
import type { CallSessionProps } from './components/CallSession';
import type { AppConfig } from './config';
import {
  PASSWORD,
  sessionFor,
  startAuthServer,
  testAuth,
  type TestAuthOptions,
  USER,
} from './test/authServer';
import { sendJson, startServer, type TestServer, VALID_DETAILS } from './test/httpServer';

let tokenServer: TestServer;
let authServer: TestServer;

let session: CallSessionProps | undefined;

function RecordingSession(props: CallSessionProps) {
  session = props;
  return <div data-testid="session" data-room={props.details.roomName} />;
}

beforeEach(async () => {
  tokenServer = await startServer((_req, _body, res) => sendJson(res, 200, VALID_DETAILS));
  authServer = await startAuthServer();
});
afterEach(async () => {
  await tokenServer.close();
  await authServer.close();
  window.history.replaceState(null, '', '/');
});

function renderApp(options: TestAuthOptions = {}) {
  const auth = testAuth(authServer, options);
  const config: AppConfig = {
    tokenEndpoint: tokenServer.url,
    agentName: 'voicefleet-demo',
    agentJoinTimeoutMs: 15000,
    auth: auth.config,
  };
  render(<App config={config} auth={auth.service} Session={RecordingSession} />);
  return auth;
}

async function signIn(password = PASSWORD) {
  await userEvent.type(await screen.findByTestId('sign-in-email'), USER.email);
  await userEvent.type(screen.getByTestId('sign-in-password'), password);
  await userEvent.click(screen.getByTestId('sign-in-button'));
}

describe('App with sign-in', () => {
  it('tells a signed-out visitor to sign in and never asks for a token', async () => {
    renderApp();
    expect(await screen.findByTestId('signed-out-notice')).toHaveTextContent(
      'Calls need a sign-in: use the email and password of your account.',
    );
    expect(screen.getByRole('heading', { name: 'Sign in to call the agent' })).toBeInTheDocument();
    expect(screen.queryByTestId('start-button')).not.toBeInTheDocument();
    expect(screen.queryByTestId('guest-button')).not.toBeInTheDocument();
    expect(screen.queryByTestId('sign-out-button')).not.toBeInTheDocument();
    expect(tokenServer.requests).toHaveLength(0);
  });

  it("signs in, then calls with the user's access token", async () => {
    renderApp();
    await signIn();
    expect(await screen.findByTestId('signed-in-as')).toHaveTextContent(`Signed in as ${USER.email}`);
    expect(screen.queryByTestId('sign-in')).not.toBeInTheDocument();
    await userEvent.click(screen.getByTestId('start-button'));
    await screen.findByTestId('session');
    expect(tokenServer.requests).toHaveLength(1);
    expect(tokenServer.requests[0]?.authorization).toBe('Bearer user-access-token');
    expect(JSON.parse(tokenServer.requests[0]?.body ?? '')).toEqual({ agentName: 'voicefleet-demo' });
  });

  it('keeps the form and says what is wrong after a failed sign-in', async () => {
    renderApp();
    await signIn('not the password');
    expect(await screen.findByTestId('sign-in-error')).toHaveTextContent('Wrong email or password.');
    expect(screen.getByTestId('sign-in-button')).toBeEnabled();
    expect(screen.queryByTestId('start-button')).not.toBeInTheDocument();
  });

  it('starts signed in from a stored session', async () => {
    renderApp({ stored: sessionFor(USER.id, USER.email, false, 'stored-token') });
    await userEvent.click(await screen.findByTestId('start-button'));
    await screen.findByTestId('session');
    expect(tokenServer.requests[0]?.authorization).toBe('Bearer stored-token');
    expect(authServer.requests).toHaveLength(0);
  });

  it('offers guests an anonymous sign-in when allowed, and calls as the guest', async () => {
    renderApp({ allowGuests: true });
    expect(await screen.findByTestId('signed-out-notice')).toHaveTextContent('or continue as a guest');
    await userEvent.click(screen.getByTestId('guest-button'));
    const who = await screen.findByTestId('signed-in-as');
    expect(who).toHaveTextContent('Signed in as a guest');
    expect(who).toHaveAttribute('data-anonymous', 'true');
    await userEvent.click(screen.getByTestId('start-button'));
    await screen.findByTestId('session');
    expect(tokenServer.requests[0]?.authorization).toBe('Bearer guest-access-token');
  });

  it('ends the call and shows the sign-in form on sign-out', async () => {
    renderApp();
    await signIn();
    await userEvent.click(await screen.findByTestId('start-button'));
    await screen.findByTestId('session');
    const line = {
      id: 'SG_1',
      kind: 'speech',
      speaker: 'user',
      speakerIdentity: USER.id,
      speakerName: 'You',
      text: 'my account number is 1234',
      final: true,
      timestamp: 1,
    } as const;
    act(() => session?.onConversation([line]));
    await userEvent.click(screen.getByTestId('sign-out-button'));
    await screen.findByTestId('sign-in-form');
    expect(screen.queryByTestId('session')).not.toBeInTheDocument();
    expect(authServer.requests.at(-1)?.url).toBe('/auth/v1/logout?scope=local');

    // Signing in again does not rejoin the old call with its old token.
    await signIn();
    expect(await screen.findByTestId('start-button')).toBeEnabled();
    expect(screen.queryByTestId('session')).not.toBeInTheDocument();
    expect(screen.queryByText('my account number is 1234')).not.toBeInTheDocument();
    expect(tokenServer.requests).toHaveLength(1);
  });

  it('shows the sign-in form when the session is gone by the time Start is pressed', async () => {
    const { storage, storageKey } = renderApp();
    await signIn();
    await screen.findByTestId('start-button');
    // Another tab signed out: the stored session is gone before this page heard of it.
    act(() => storage.removeItem(storageKey));
    await userEvent.click(screen.getByTestId('start-button'));
    expect(await screen.findByTestId('sign-in-form')).toBeInTheDocument();
    expect(screen.queryByTestId('sign-out-button')).not.toBeInTheDocument();
    expect(tokenServer.requests).toHaveLength(0);

    // Signed in again, the page is ready for a new call, with no error left from before.
    await signIn();
    expect(await screen.findByTestId('start-button')).toBeEnabled();
    expect(screen.queryByTestId('error-message')).not.toBeInTheDocument();
  });

  it("joins an invite with the user's access token, like any call", async () => {
    const code = 'v1.eyJyIjoidm9pY2UifQ.Xb3k_-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    window.history.replaceState(null, '', `/?invite=${code}`);
    renderApp();
    // Signed out, the page still says where the link leads.
    expect(await screen.findByTestId('invite-notice')).toHaveTextContent("joins someone's call");
    await signIn();
    await userEvent.click(await screen.findByTestId('start-button'));
    await screen.findByTestId('session');
    expect(tokenServer.requests[0]?.authorization).toBe('Bearer user-access-token');
    expect(JSON.parse(tokenServer.requests[0]?.body ?? '')).toEqual({ invite_code: code });
    expect(window.location.search).toBe('');
  });

  it("asks for an invite code with the user's access token", async () => {
    renderApp();
    await signIn();
    await userEvent.click(await screen.findByTestId('start-button'));
    await screen.findByTestId('session');
    const invite = { inviteCode: 'v1.a.b', roomName: 'voice-1', expiresAt: '2030-01-01T00:05:00.000Z' };
    tokenServer.setHandler((_req, _body, res) => sendJson(res, 200, invite));
    await expect(session?.requestInvite('lk.token')).resolves.toEqual(invite);
    expect(tokenServer.requests[1]?.authorization).toBe('Bearer user-access-token');
    expect(JSON.parse(tokenServer.requests[1]?.body ?? '')).toEqual({ invite_with_token: 'lk.token' });
  });
});
