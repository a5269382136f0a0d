import { describe, expect, it } from 'vitest';
import { agentTimeoutError } from './callErrors';
import { type CallAction, callReducer, type CallState, initialCallState } from './callState';
import { VALID_DETAILS } from '../test/httpServer';

function run(...actions: CallAction[]): CallState {
  return actions.reduce(callReducer, initialCallState);
}

const error = agentTimeoutError(15000);

describe('callReducer', () => {
  it('goes idle → requesting → in call → ended', () => {
    expect(run({ type: 'start' }).phase).toEqual({ kind: 'requesting-token', attempt: 1 });
    const inCall = run({ type: 'start' }, { type: 'token-received', attempt: 1, details: VALID_DETAILS });
    expect(inCall.phase).toEqual({ kind: 'in-call', attempt: 1, details: VALID_DETAILS });
    expect(callReducer(inCall, { type: 'ended', attempt: 1 }).phase).toEqual({ kind: 'ended', attempt: 1 });
  });

  it('keeps the first failure of an attempt', () => {
    const failed = run({ type: 'start' }, { type: 'failed', attempt: 1, error });
    const again = callReducer(failed, { type: 'failed', attempt: 1, error: { ...error, kind: 'unknown' } });
    expect(again.phase).toEqual({ kind: 'failed', attempt: 1, error });
  });

  it('retries with a new attempt and ignores reports from the old one', () => {
    const retried = run({ type: 'start' }, { type: 'failed', attempt: 1, error }, { type: 'start' });
    expect(retried.phase).toEqual({ kind: 'requesting-token', attempt: 2 });
    expect(callReducer(retried, { type: 'token-received', attempt: 1, details: VALID_DETAILS })).toBe(
      retried,
    );
    expect(callReducer(retried, { type: 'ended', attempt: 1 })).toBe(retried);
  });

  it('ignores a second start while a call is live', () => {
    const requesting = run({ type: 'start' });
    expect(callReducer(requesting, { type: 'start' })).toBe(requesting);
  });

  it('ignores errors that arrive after the user ended the call', () => {
    const ended = run(
      { type: 'start' },
      { type: 'token-received', attempt: 1, details: VALID_DETAILS },
      { type: 'ended', attempt: 1 },
    );
    expect(callReducer(ended, { type: 'failed', attempt: 1, error })).toBe(ended);
  });

  it('does not accept a token for a call already in progress', () => {
    const inCall = run({ type: 'start' }, { type: 'token-received', attempt: 1, details: VALID_DETAILS });
    const other = { ...VALID_DETAILS, roomName: 'other' };
    expect(callReducer(inCall, { type: 'token-received', attempt: 1, details: other })).toBe(inCall);
  });

  it('goes idle on sign-out from any phase, and ignores reports of the call it left', () => {
    const inCall = run({ type: 'start' }, { type: 'token-received', attempt: 1, details: VALID_DETAILS });
    const failed = run({ type: 'start' }, { type: 'failed', attempt: 1, error });
    for (const state of [inCall, failed, run({ type: 'start' })]) {
      const out = callReducer(state, { type: 'signed-out' });
      expect(out.phase).toEqual({ kind: 'idle' });
      expect(callReducer(out, { type: 'failed', attempt: 1, error })).toBe(out);
      expect(callReducer(out, { type: 'start' }).phase).toEqual({ kind: 'requesting-token', attempt: 2 });
    }
  });
});
