/**
 * The call's lifecycle as a reducer. Every start gets a new attempt number so that a late
 * answer or error from an abandoned attempt cannot change the current one.
 */

import type { CallError } from './callErrors';
import type { ConnectionDetails } from './tokenClient';

export type CallPhase =
  | { readonly kind: 'idle' }
  | { readonly kind: 'requesting-token'; readonly attempt: number }
  | { readonly kind: 'in-call'; readonly attempt: number; readonly details: ConnectionDetails }
  | { readonly kind: 'ended'; readonly attempt: number }
  | { readonly kind: 'failed'; readonly attempt: number; readonly error: CallError };

export interface CallState {
  readonly phase: CallPhase;
  readonly lastAttempt: number;
}

export type CallAction =
  | { readonly type: 'start' }
  | { readonly type: 'token-received'; readonly attempt: number; readonly details: ConnectionDetails }
  | { readonly type: 'failed'; readonly attempt: number; readonly error: CallError }
  | { readonly type: 'ended'; readonly attempt: number }
  /** The caller signed out: whatever was going on is over, and nothing of it stays on screen. */
  | { readonly type: 'signed-out' };

export const initialCallState: CallState = { phase: { kind: 'idle' }, lastAttempt: 0 };

function isLive(phase: CallPhase): phase is Extract<CallPhase, { attempt: number }> & {
  kind: 'requesting-token' | 'in-call';
} {
  return phase.kind === 'requesting-token' || phase.kind === 'in-call';
}

export function callReducer(state: CallState, action: CallAction): CallState {
  if (action.type === 'signed-out') return { ...state, phase: { kind: 'idle' } };
  if (action.type === 'start') {
    if (isLive(state.phase)) return state;
    const attempt = state.lastAttempt + 1;
    return { phase: { kind: 'requesting-token', attempt }, lastAttempt: attempt };
  }
  // Only the attempt in progress may move forward; anything else is a stale report.
  if (!isLive(state.phase) || state.phase.attempt !== action.attempt) return state;
  switch (action.type) {
    case 'token-received':
      if (state.phase.kind !== 'requesting-token') return state;
      return { ...state, phase: { kind: 'in-call', attempt: action.attempt, details: action.details } };
    case 'failed':
      return { ...state, phase: { kind: 'failed', attempt: action.attempt, error: action.error } };
    case 'ended':
      return { ...state, phase: { kind: 'ended', attempt: action.attempt } };
  }
}

export function attemptOf(phase: CallPhase): number | undefined {
  return phase.kind === 'idle' ? undefined : phase.attempt;
}
