import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { CallError } from '../lib/callErrors';
import { VALID_DETAILS } from '../test/httpServer';
import { CallSession } from './CallSession';

function renderSession() {
  const onFailure = vi.fn<(error: CallError) => void>();
  const onEnded = vi.fn();
  render(
    <CallSession
      details={VALID_DETAILS}
      tokenEndpoint="http://127.0.0.1:54321/functions/v1/livekit-token"
      agentJoinTimeoutMs={15000}
      onFailure={onFailure}
      onEnded={onEnded}
      onConversation={vi.fn()}
      requestInvite={vi.fn()}
    />,
  );
  return { onFailure, onEnded };
}

// jsdom has no WebRTC, so the real SDK stops before any network traffic; the LiveKit
// connection itself is exercised in a browser, not here.
describe('CallSession with the real LiveKit SDK', () => {
  it('renders the call through the components hooks while connecting', async () => {
    const { onEnded } = renderSession();
    expect(screen.getByTestId('connection-state')).toHaveAttribute('data-state', 'connecting');
    expect(screen.getByTestId('agent-state')).toHaveAttribute('data-state', 'connecting');
    expect(screen.getByTestId('mute-button')).toBeDisabled();
    expect(screen.getByTestId('mute-button')).toHaveAttribute('data-muted', 'false');
    expect(screen.getByLabelText('Message to the agent')).toBeDisabled();
    expect(screen.getByTestId('transcript')).toHaveTextContent(/Say hello/);
    await userEvent.click(screen.getByTestId('end-button'));
    expect(onEnded).toHaveBeenCalledTimes(1);
  });

  it('says so when the browser has no WebRTC', async () => {
    const { onFailure } = renderSession();
    await waitFor(() => expect(onFailure).toHaveBeenCalled());
    expect(onFailure.mock.calls[0]?.[0].kind).toBe('unsupported-browser');
  });
});
