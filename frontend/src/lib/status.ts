/** What the status bar says about the connection and the agent. */

import { ConnectionState } from 'livekit-client';
import type { AgentState } from '@livekit/components-react';

export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/**
 * The SDK's state, with two adjustments: the signal-only reconnect counts as reconnecting,
 * and a room not yet asked to connect counts as connecting while a call is starting.
 */
export function connectionStatus(state: ConnectionState, callStarting: boolean): ConnectionStatus {
  switch (state) {
    case ConnectionState.Connected:
      return 'connected';
    case ConnectionState.Connecting:
      return 'connecting';
    case ConnectionState.Reconnecting:
    case ConnectionState.SignalReconnecting:
      return 'reconnecting';
    default:
      return callStarting ? 'connecting' : 'disconnected';
  }
}

/** Before the room first connects the SDK says "disconnected"; for the agent that means not here yet. */
export function agentStatus(state: AgentState, callStarting: boolean): AgentState {
  return callStarting && state === 'disconnected' ? 'connecting' : state;
}

export const CONNECTION_LABELS: Record<ConnectionStatus, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  disconnected: 'Not connected',
};

export const AGENT_LABELS: Record<AgentState, string> = {
  disconnected: 'Not in a call',
  connecting: 'Waiting for the agent…',
  'pre-connect-buffering': 'Waiting for the agent…',
  initializing: 'Agent is starting…',
  idle: 'Agent is idle',
  listening: 'Listening',
  thinking: 'Thinking…',
  speaking: 'Speaking',
  failed: 'Agent unavailable',
};

export function agentLabel(state: AgentState): string {
  return AGENT_LABELS[state] ?? state;
}
