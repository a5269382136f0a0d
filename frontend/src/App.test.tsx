import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ConnectionError, MediaDeviceFailure } from 'livekit-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from './App';
import type { CallSessionProps } from './components/CallSession';
import type { AppConfig } from './config';
import { agentTimeoutError, classifyError, microphoneError } from './lib/callErrors';
import { closedPort, sendJson, startServer, type TestServer, VALID_DETAILS } from './test/httpServer';

let server: TestServer;
let session: CallSessionProps | undefined;

/** Stands in for the LiveKit room: App only sees it through CallSessionProps. */
function RecordingSession(props: CallSessionProps) {
  session = props;
  return <div data-testid="session" data-room={props.details.roomName} />;
}

beforeEach(async () => {
  session = undefined;
  server = await startServer((_req, _body, res) => sendJson(res, 200, VALID_DETAILS));
});
afterEach(async () => {
  await server.close();
});

function renderApp(overrides: Partial<AppConfig> = {}) {
  const config: AppConfig = {
    tokenEndpoint: server.url,
    agentName: 'voicefleet-demo',
    agentJoinTimeoutMs: 15000,
    auth: null,
    ...overrides,
  };
  return render(<App config={config} Session={RecordingSession} />);
}

async function startCall() {
  await userEvent.click(screen.getByTestId('start-button'));
  await screen.findByTestId('session');
}

function currentSession(): CallSessionProps {
  if (session === undefined) throw new Error('no session rendered');
  return session;
}

async function expectErrorThenRetry(kind: string, text: RegExp) {
  const message = await screen.findByTestId('error-message');
  expect(message).toHaveAttribute('data-error-kind', kind);
  expect(message).toHaveTextContent(text);
  expect(screen.getByRole('alert')).toContainElement(message);
  expect(screen.queryByTestId('start-button')).not.toBeInTheDocument();
  expect(screen.getByTestId('connection-state')).toHaveAttribute('data-state', 'disconnected');

  const before = server.requests.length;
  await userEvent.click(screen.getByTestId('retry-button'));
  await screen.findByTestId('session');
  expect(server.requests.length).toBe(before + 1);
  expect(screen.queryByTestId('error-message')).not.toBeInTheDocument();
}

describe('App', () => {
  it('starts idle with a start button and nothing connected', () => {
    renderApp();
    expect(screen.getByTestId('start-button')).toHaveTextContent('Start voice call');
    expect(screen.getByTestId('connection-state')).toHaveAttribute('data-state', 'disconnected');
    expect(screen.getByTestId('agent-state')).toHaveAttribute('data-state', 'disconnected');
    expect(server.requests).toHaveLength(0);
  });

  it('fetches a token for the configured agent and joins with it', async () => {
    renderApp({ agentName: 'front-desk' });
    await startCall();
    expect(JSON.parse(server.requests[0]?.body ?? '')).toEqual({ agentName: 'front-desk' });
    // Without sign-in configured there is no account, so no access token is sent.
    expect(server.requests[0]?.authorization).toBeUndefined();
    expect(screen.queryByTestId('sign-in')).not.toBeInTheDocument();
    expect(currentSession().details).toEqual(VALID_DETAILS);
    expect(screen.getByTestId('session')).toHaveAttribute('data-room', VALID_DETAILS.roomName);
  });

  it('shows connecting while the token is on its way', async () => {
    let answer: (() => void) | undefined;
    server.setHandler((_req, _body, res) => {
      answer = () => sendJson(res, 200, VALID_DETAILS);
    });
    renderApp();
    await userEvent.click(screen.getByTestId('start-button'));
    expect(screen.getByTestId('connection-state')).toHaveAttribute('data-state', 'connecting');
    expect(screen.getByTestId('start-button')).toBeDisabled();
    await waitFor(() => expect(answer).toBeDefined());
    answer?.();
    await screen.findByTestId('session');
  });

  it('shows the token endpoint JSON error and retries', async () => {
    server.setHandler((_req, _body, res) => sendJson(res, 503, { error: 'LiveKit is not configured' }));
    renderApp();
    await userEvent.click(screen.getByTestId('start-button'));
    const message = await screen.findByTestId('error-message');
    expect(message).toHaveTextContent('The token service refused the call (HTTP 503)');
    expect(message).toHaveTextContent('LiveKit is not configured');

    server.setHandler((_req, _body, res) => sendJson(res, 200, VALID_DETAILS));
    await userEvent.click(screen.getByTestId('retry-button'));
    await screen.findByTestId('session');
  });

  it('says when the token endpoint is down, and retries', async () => {
    const down = `http://127.0.0.1:${await closedPort()}/functions/v1/livekit-token`;
    renderApp({ tokenEndpoint: down });
    await userEvent.click(screen.getByTestId('start-button'));
    const message = await screen.findByTestId('error-message');
    expect(message).toHaveAttribute('data-error-kind', 'token-endpoint-unreachable');
    expect(message).toHaveTextContent(down);
    await userEvent.click(screen.getByTestId('retry-button'));
    expect(await screen.findByTestId('error-message')).toHaveAttribute(
      'data-error-kind',
      'token-endpoint-unreachable',
    );
  });

  it('reports a denied microphone and retries', async () => {
    renderApp();
    await startCall();
    act(() => currentSession().onFailure(microphoneError(MediaDeviceFailure.PermissionDenied)));
    await expectErrorThenRetry('microphone-denied', /Microphone access is blocked/);
  });

  it('reports an unreachable LiveKit server and retries', async () => {
    renderApp();
    await startCall();
    const err = ConnectionError.serverUnreachable('could not establish signal connection');
    act(() =>
      currentSession().onFailure(
        classifyError(err, { tokenEndpoint: server.url, serverUrl: 'wss://lk.test' }),
      ),
    );
    await expectErrorThenRetry('livekit-unreachable', /Could not connect to LiveKit at wss:\/\/lk\.test/);
  });

  it('reports an agent that did not join and retries', async () => {
    renderApp({ agentJoinTimeoutMs: 4000 });
    await startCall();
    expect(currentSession().agentJoinTimeoutMs).toBe(4000);
    act(() => currentSession().onFailure(agentTimeoutError(4000)));
    await expectErrorThenRetry('agent-timeout', /No agent joined within 4 seconds/);
  });

  it('moves focus to Retry so a keyboard user can act at once', async () => {
    renderApp();
    await startCall();
    act(() => currentSession().onFailure(agentTimeoutError(15000)));
    await waitFor(() => expect(screen.getByTestId('retry-button')).toHaveFocus());
    await userEvent.keyboard('{Enter}');
    await screen.findByTestId('session');
  });

  it('ends the call, keeps the conversation, and can start again', async () => {
    renderApp();
    await startCall();
    act(() =>
      currentSession().onConversation([
        {
          id: 'SG_1',
          kind: 'speech',
          speaker: 'agent',
          speakerIdentity: 'agent-AJ_1',
          speakerName: 'Agent',
          text: 'Hello, how can I help?',
          final: true,
          timestamp: 1,
        },
      ]),
    );
    act(() => currentSession().onEnded());
    expect(await screen.findByTestId('call-ended')).toHaveTextContent('Call ended.');
    expect(screen.queryByTestId('session')).not.toBeInTheDocument();
    const transcript = screen.getByTestId('transcript');
    expect(within(transcript).getByText('Hello, how can I help?')).toBeInTheDocument();

    await startCall();
    expect(server.requests).toHaveLength(2);
    expect(screen.queryByText('Hello, how can I help?')).not.toBeInTheDocument();
  });

  it('lets the user cancel while the token is requested', async () => {
    server.setHandler(() => {
      // Never answers: the user gives up first.
    });
    renderApp();
    await userEvent.click(screen.getByTestId('start-button'));
    await userEvent.click(screen.getByTestId('end-button'));
    expect(screen.getByTestId('connection-state')).toHaveAttribute('data-state', 'disconnected');
    expect(screen.getByTestId('start-button')).toBeEnabled();
  });
});
