/** Turns whatever went wrong into one message a person can act on. */

import {
  ConnectionError,
  ConnectionErrorReason,
  DisconnectReason,
  isBrowserSupported,
  MediaDeviceFailure,
} from 'livekit-client';
import { TokenRequestError } from './tokenClient';

export type CallErrorKind =
  | 'microphone-denied'
  | 'microphone-unavailable'
  | 'token-endpoint-unreachable'
  | 'token-endpoint-error'
  | 'livekit-unreachable'
  | 'livekit-rejected'
  | 'agent-timeout'
  | 'agent-left'
  | 'connection-lost'
  | 'unsupported-browser'
  | 'sign-in-required'
  | 'unknown';

export interface CallError {
  readonly kind: CallErrorKind;
  readonly title: string;
  readonly message: string;
}

export function microphoneError(failure: MediaDeviceFailure | undefined): CallError {
  if (failure === MediaDeviceFailure.PermissionDenied) {
    return {
      kind: 'microphone-denied',
      title: 'Microphone access is blocked',
      message: "Allow this page to use your microphone in the browser's site settings, then retry.",
    };
  }
  return {
    kind: 'microphone-unavailable',
    title: 'No usable microphone',
    message:
      failure === MediaDeviceFailure.DeviceInUse
        ? 'Another app is using the microphone. Close it, then retry.'
        : 'No microphone could be opened. Connect one, then retry.',
  };
}

export function tokenError(err: TokenRequestError, endpoint: string): CallError {
  if (err.failure === 'unreachable') {
    return {
      kind: 'token-endpoint-unreachable',
      title: "Can't reach the token service",
      message: `${err.message} Check that ${endpoint} is running, then retry.`,
    };
  }
  const status = err.status === undefined ? '' : ` (HTTP ${err.status})`;
  return {
    kind: 'token-endpoint-error',
    title: `The token service refused the call${status}`,
    message: err.message,
  };
}

export function liveKitError(err: ConnectionError, serverUrl: string): CallError {
  if (err.reason === ConnectionErrorReason.NotAllowed) {
    return {
      kind: 'livekit-rejected',
      title: 'The voice server refused the token',
      message: 'LiveKit did not accept the access token. Retry to get a new one.',
    };
  }
  return {
    kind: 'livekit-unreachable',
    title: "Can't reach the voice server",
    message: `Could not connect to LiveKit at ${serverUrl}. Check your network, then retry.`,
  };
}

export function agentTimeoutError(timeoutMs: number): CallError {
  return {
    kind: 'agent-timeout',
    title: "The agent didn't join",
    message: `No agent joined within ${Math.round(timeoutMs / 1000)} seconds. It may be busy or down; retry in a moment.`,
  };
}

export function signInRequiredError(): CallError {
  return {
    kind: 'sign-in-required',
    title: 'You are signed out',
    message: 'Your sign-in has ended. Sign in again, then start the call.',
  };
}

export function agentLeftError(): CallError {
  return {
    kind: 'agent-left',
    title: 'The agent left the call',
    message: 'Start a new call to keep talking.',
  };
}

export function connectionLostError(reason: DisconnectReason | undefined): CallError {
  const why = reason === undefined ? '' : ` (${DisconnectReason[reason] ?? reason})`;
  return {
    kind: 'connection-lost',
    title: 'The call was disconnected',
    message: `The connection to the voice server was lost and could not be restored${why}.`,
  };
}

/** Disconnects that close the call on purpose rather than break it. */
export function isOrderlyDisconnect(reason: DisconnectReason | undefined): boolean {
  return (
    reason === DisconnectReason.CLIENT_INITIATED ||
    reason === DisconnectReason.ROOM_DELETED ||
    reason === DisconnectReason.ROOM_CLOSED ||
    reason === DisconnectReason.PARTICIPANT_REMOVED
  );
}

const MEDIA_ERROR_NAMES = new Set([
  'NotAllowedError',
  'PermissionDeniedError',
  'NotFoundError',
  'DevicesNotFoundError',
  'NotReadableError',
  'TrackStartError',
  'OverconstrainedError',
]);

export interface ErrorContext {
  readonly tokenEndpoint: string;
  readonly serverUrl?: string;
  /** Whether this browser can do WebRTC at all; the SDK's own check by default. */
  readonly webRtcSupported?: () => boolean;
}

export function unsupportedBrowserError(): CallError {
  return {
    kind: 'unsupported-browser',
    title: "This browser can't make voice calls",
    message:
      'WebRTC is unavailable. Use a current Chrome, Edge, Firefox or Safari without extensions that block it.',
  };
}

/** Classifies an error thrown by the token client or the LiveKit SDK. */
export function classifyError(err: unknown, context: ErrorContext): CallError {
  if (err instanceof TokenRequestError) return tokenError(err, context.tokenEndpoint);
  if (err instanceof ConnectionError) return liveKitError(err, context.serverUrl ?? 'the configured URL');
  if (MEDIA_ERROR_NAMES.has(nameOf(err))) return microphoneError(MediaDeviceFailure.getFailure(err));
  if (!(context.webRtcSupported ?? isBrowserSupported)()) return unsupportedBrowserError();
  return {
    kind: 'unknown',
    title: 'Something went wrong',
    message: err instanceof Error && err.message ? err.message : String(err),
  };
}

/** getUserMedia rejects with a DOMException, which is not an Error subclass everywhere. */
function nameOf(err: unknown): string {
  if (typeof err !== 'object' || err === null || !('name' in err)) return '';
  return typeof err.name === 'string' ? err.name : '';
}
