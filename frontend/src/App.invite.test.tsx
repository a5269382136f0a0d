import { act, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from './App';
import type { AppConfig } from './config';
import { connectionLostError } from './lib/callErrors';
import { sendJson, startServer, type TestServer, VALID_DETAILS } from './test/httpServer';
import { recordingSession } from './test/recordingSession';

const CODE = 'v1.eyJyIjoidm9pY2UifQ.Xb3k_-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const INVITE = { inviteCode: CODE, roomName: VALID_DETAILS.roomName, expiresAt: '2030-01-01T00:05:00.000Z' };

let server: TestServer;
let session = recordingSession();

beforeEach(async () => {
  session = recordingSession();
  server = await startServer((_req, _body, res) => sendJson(res, 200, VALID_DETAILS));
});
afterEach(async () => {
  await server.close();
  window.history.replaceState(null, '', '/');
});

function renderApp() {
  const config: AppConfig = {
    tokenEndpoint: server.url,
    agentName: 'voicefleet-demo',
    agentJoinTimeoutMs: 15000,
    auth: null,
  };
  render(<App config={config} Session={session.Session} />);
}

const currentSession = () => session.current();

function bodies(): unknown[] {
  return server.requests.map((r) => JSON.parse(r.body) as unknown);
}

describe('App opened with ?invite=', () => {
  beforeEach(() => {
    window.history.replaceState(null, '', `/?lang=en&invite=${CODE}`);
  });

  it("says it joins someone's call and joins it with the code, then forgets the code", async () => {
    renderApp();
    expect(screen.getByTestId('invite-notice')).toHaveTextContent("this page joins someone's call");
    expect(screen.getByTestId('start-button')).toHaveTextContent('Join the call');
    await userEvent.click(screen.getByTestId('start-button'));
    await screen.findByTestId('session');
    expect(bodies()).toEqual([{ invite_code: CODE }]);
    expect(server.requests[0]?.authorization).toBeUndefined();
    expect(currentSession().details).toEqual(VALID_DETAILS);
    // Used: a reload must not join again.
    expect(window.location.search).toBe('?lang=en');
    expect(screen.queryByTestId('invite-notice')).not.toBeInTheDocument();

    // The call ends: the next Start is a call of one's own.
    act(() => currentSession().onEnded());
    await screen.findByTestId('call-ended');
    expect(screen.queryByTestId('invite-notice')).not.toBeInTheDocument();
    expect(screen.getByTestId('start-button')).toHaveTextContent('Start voice call');
    await userEvent.click(screen.getByTestId('start-button'));
    await screen.findByTestId('session');
    expect(bodies()).toEqual([{ invite_code: CODE }, { agentName: 'voicefleet-demo' }]);
  });

  it("shows the function's refusal and retries with the same code", async () => {
    server.setHandler((_req, _body, res) =>
      sendJson(res, 429, { error: 'too many calls at once: try again in a minute' }),
    );
    renderApp();
    await userEvent.click(screen.getByTestId('start-button'));
    expect(await screen.findByTestId('error-message')).toHaveTextContent(
      'too many calls at once: try again in a minute',
    );
    // Not used yet: the address still holds the invite.
    expect(window.location.search).toBe(`?lang=en&invite=${CODE}`);
    expect(screen.getByTestId('invite-notice')).toBeInTheDocument();

    server.setHandler((_req, _body, res) => sendJson(res, 200, VALID_DETAILS));
    await userEvent.click(screen.getByTestId('retry-button'));
    await screen.findByTestId('session');
    expect(bodies()).toEqual([{ invite_code: CODE }, { invite_code: CODE }]);
  });

  it('rejoins with the code after a lost connection, though the address no longer has it', async () => {
    renderApp();
    await userEvent.click(screen.getByTestId('start-button'));
    await screen.findByTestId('session');
    act(() => currentSession().onFailure(connectionLostError(undefined)));
    await userEvent.click(await screen.findByTestId('retry-button'));
    await screen.findByTestId('session');
    expect(bodies()).toEqual([{ invite_code: CODE }, { invite_code: CODE }]);
    expect(window.location.search).toBe('?lang=en');
  });

  it('forgets the code when the caller cancels the join', async () => {
    server.setHandler(() => {
      // Never answers: the caller gives up first.
    });
    renderApp();
    await userEvent.click(screen.getByTestId('start-button'));
    expect(screen.getByTestId('start-button')).toHaveTextContent('Joining…');
    await userEvent.click(screen.getByTestId('end-button'));
    expect(window.location.search).toBe('?lang=en');
    expect(screen.getByTestId('start-button')).toHaveTextContent('Start voice call');
  });
});

describe('App without an invite', () => {
  it('asks for a normal call and says nothing of invites', async () => {
    renderApp();
    expect(screen.queryByTestId('invite-notice')).not.toBeInTheDocument();
    await userEvent.click(screen.getByTestId('start-button'));
    await screen.findByTestId('session');
    expect(bodies()).toEqual([{ agentName: 'voicefleet-demo' }]);
  });

  it("asks for an invite code with the session's participant token", async () => {
    renderApp();
    await userEvent.click(screen.getByTestId('start-button'));
    await screen.findByTestId('session');
    server.setHandler((_req, _body, res) => sendJson(res, 200, INVITE));
    await expect(currentSession().requestInvite('refreshed.lk.token')).resolves.toEqual(INVITE);
    expect(bodies()[1]).toEqual({ invite_with_token: 'refreshed.lk.token' });
  });

  it('keeps the call going when the function refuses an invite', async () => {
    renderApp();
    await userEvent.click(screen.getByTestId('start-button'));
    await screen.findByTestId('session');
    server.setHandler((_req, _body, res) => sendJson(res, 403, { error: 'invites are off on this server' }));
    await expect(currentSession().requestInvite(VALID_DETAILS.participantToken)).rejects.toThrow(
      'invites are off on this server',
    );
    await waitFor(() => expect(screen.getByTestId('session')).toBeInTheDocument());
    expect(screen.queryByTestId('error-message')).not.toBeInTheDocument();
  });
});
