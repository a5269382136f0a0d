import { ConnectionError, DisconnectReason, MediaDeviceFailure } from 'livekit-client';
import { describe, expect, it } from 'vitest';
import {
  agentTimeoutError,
  classifyError,
  connectionLostError,
  isOrderlyDisconnect,
  microphoneError,
} from './callErrors';
import { TokenRequestError } from './tokenClient';

const context = {
  tokenEndpoint: 'http://127.0.0.1:54321/functions/v1/livekit-token',
  serverUrl: 'wss://lk.test',
  webRtcSupported: () => true,
};

describe('classifyError', () => {
  it('reports a denied microphone from the browser error', () => {
    const error = classifyError(new DOMException('Permission denied', 'NotAllowedError'), context);
    expect(error.kind).toBe('microphone-denied');
    expect(error.message).toMatch(/site settings/);
  });

  it.each([
    ['NotFoundError', /Connect one/],
    ['NotReadableError', /Another app/],
  ])('reports %s as an unusable microphone', (name, message) => {
    const error = classifyError(new DOMException('no', name), context);
    expect(error.kind).toBe('microphone-unavailable');
    expect(error.message).toMatch(message);
  });

  it('reports an unreachable token endpoint with its URL', () => {
    const error = classifyError(
      new TokenRequestError('unreachable', 'The token endpoint could not be reached.'),
      context,
    );
    expect(error.kind).toBe('token-endpoint-unreachable');
    expect(error.message).toContain(context.tokenEndpoint);
  });

  it("shows the token endpoint's own error text and status", () => {
    const error = classifyError(
      new TokenRequestError('rejected', 'agentName must be a string', 400),
      context,
    );
    expect(error).toEqual({
      kind: 'token-endpoint-error',
      title: 'The token service refused the call (HTTP 400)',
      message: 'agentName must be a string',
    });
  });

  it('reports an unreachable LiveKit server with its URL', () => {
    const error = classifyError(
      ConnectionError.serverUnreachable('could not establish signal connection'),
      context,
    );
    expect(error.kind).toBe('livekit-unreachable');
    expect(error.message).toContain('wss://lk.test');
  });

  it('tells a rejected token apart from an unreachable server', () => {
    expect(classifyError(ConnectionError.notAllowed('invalid token', 401), context).kind).toBe(
      'livekit-rejected',
    );
    expect(classifyError(ConnectionError.timeout('timed out'), context).kind).toBe('livekit-unreachable');
  });

  it('blames a browser without WebRTC before anything else unexplained', () => {
    const error = classifyError(new Error('not supported'), { ...context, webRtcSupported: () => false });
    expect(error.kind).toBe('unsupported-browser');
  });

  it('keeps the message of anything else', () => {
    expect(classifyError(new Error('boom'), context)).toMatchObject({ kind: 'unknown', message: 'boom' });
    expect(classifyError('text', context)).toMatchObject({ kind: 'unknown', message: 'text' });
  });
});

describe('error factories', () => {
  it('maps LiveKit media failures', () => {
    expect(microphoneError(MediaDeviceFailure.PermissionDenied).kind).toBe('microphone-denied');
    expect(microphoneError(MediaDeviceFailure.NotFound).kind).toBe('microphone-unavailable');
    expect(microphoneError(undefined).kind).toBe('microphone-unavailable');
  });

  it('states the agent timeout in seconds', () => {
    expect(agentTimeoutError(15000).message).toMatch(/within 15 seconds/);
  });

  it('names the disconnect reason', () => {
    expect(connectionLostError(DisconnectReason.SIGNAL_CLOSE).message).toMatch(/SIGNAL_CLOSE/);
    expect(connectionLostError(undefined).message).not.toMatch(/\(/);
  });

  it('treats only deliberate disconnects as orderly', () => {
    expect(isOrderlyDisconnect(DisconnectReason.CLIENT_INITIATED)).toBe(true);
    expect(isOrderlyDisconnect(DisconnectReason.ROOM_DELETED)).toBe(true);
    expect(isOrderlyDisconnect(DisconnectReason.SIGNAL_CLOSE)).toBe(false);
    expect(isOrderlyDisconnect(DisconnectReason.SERVER_SHUTDOWN)).toBe(false);
    expect(isOrderlyDisconnect(undefined)).toBe(false);
  });
});
