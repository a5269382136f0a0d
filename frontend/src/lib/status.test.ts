import { ConnectionState } from 'livekit-client';
import { describe, expect, it } from 'vitest';
import { agentLabel, agentStatus, connectionStatus } from './status';

describe('connectionStatus', () => {
  it.each([
    [ConnectionState.Connected, false, 'connected'],
    [ConnectionState.Connecting, false, 'connecting'],
    [ConnectionState.Reconnecting, false, 'reconnecting'],
    [ConnectionState.SignalReconnecting, false, 'reconnecting'],
    [ConnectionState.Disconnected, false, 'disconnected'],
    [ConnectionState.Disconnected, true, 'connecting'],
  ] as const)('%s (starting=%s) → %s', (state, starting, expected) => {
    expect(connectionStatus(state, starting)).toBe(expected);
  });
});

describe('agentLabel', () => {
  it('describes the states a voice agent reports', () => {
    expect(agentLabel('listening')).toBe('Listening');
    expect(agentLabel('thinking')).toBe('Thinking…');
    expect(agentLabel('speaking')).toBe('Speaking');
  });
});

describe('agentStatus', () => {
  it('waits for the agent while the call starts, and reports the SDK state after', () => {
    expect(agentStatus('disconnected', true)).toBe('connecting');
    expect(agentStatus('disconnected', false)).toBe('disconnected');
    expect(agentStatus('listening', true)).toBe('listening');
  });
});
