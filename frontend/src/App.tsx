import { type ComponentType, useCallback, useEffect, useReducer, useState } from 'react';
import { CallSession, type CallSessionProps } from './components/CallSession';
import { ConversationLog } from './components/ConversationLog';
import { ErrorPanel } from './components/ErrorPanel';
import { StatusBar } from './components/StatusBar';
import type { AppConfig } from './config';
import { type CallError, classifyError } from './lib/callErrors';
import { callReducer, initialCallState } from './lib/callState';
import { type ConnectionDetails, requestConnectionDetails, type TokenRequest } from './lib/tokenClient';
import type { ConversationEntry } from './lib/transcript';

export type TokenRequester = (endpoint: string, request: TokenRequest) => Promise<ConnectionDetails>;

export interface AppProps {
  readonly config: AppConfig;
  /** Swappable so tests can drive the page without a LiveKit server. */
  readonly requestToken?: TokenRequester;
  readonly Session?: ComponentType<CallSessionProps>;
}

export function App({ config, requestToken = requestConnectionDetails, Session = CallSession }: AppProps) {
  const [state, dispatch] = useReducer(callReducer, initialCallState);
  const [entries, setEntries] = useState<readonly ConversationEntry[]>([]);
  const { phase } = state;
  const attempt = phase.kind === 'idle' ? 0 : phase.attempt;

  const start = useCallback(() => {
    setEntries([]);
    dispatch({ type: 'start' });
  }, []);

  useEffect(() => {
    if (phase.kind !== 'requesting-token') return;
    const request = { agentName: config.agentName };
    requestToken(config.tokenEndpoint, request).then(
      (details) => dispatch({ type: 'token-received', attempt, details }),
      (err: unknown) =>
        dispatch({
          type: 'failed',
          attempt,
          error: classifyError(err, { tokenEndpoint: config.tokenEndpoint }),
        }),
    );
  }, [phase.kind, attempt, config, requestToken]);

  const fail = useCallback((error: CallError) => dispatch({ type: 'failed', attempt, error }), [attempt]);
  const end = useCallback(() => dispatch({ type: 'ended', attempt }), [attempt]);

  return (
    <main className="app">
      <header className="app-header">
        <h1>voicefleet</h1>
        <p className="subtitle">
          Voice chat with agent <strong>{config.agentName}</strong>
        </p>
      </header>

      {phase.kind === 'in-call' ? (
        <Session
          key={phase.attempt}
          details={phase.details}
          tokenEndpoint={config.tokenEndpoint}
          agentJoinTimeoutMs={config.agentJoinTimeoutMs}
          onFailure={fail}
          onEnded={end}
          onConversation={setEntries}
        />
      ) : (
        <OutOfCall
          phase={phase.kind}
          error={phase.kind === 'failed' ? phase.error : null}
          entries={entries}
          onStart={start}
          onCancel={end}
        />
      )}
    </main>
  );
}

interface OutOfCallProps {
  readonly phase: 'idle' | 'requesting-token' | 'ended' | 'failed';
  readonly error: CallError | null;
  readonly entries: readonly ConversationEntry[];
  readonly onStart: () => void;
  readonly onCancel: () => void;
}

/** Before a call, while its token is fetched, and after it ended or failed. */
function OutOfCall({ phase, error, entries, onStart, onCancel }: OutOfCallProps) {
  const requesting = phase === 'requesting-token';
  return (
    <>
      <StatusBar
        connection={requesting ? 'connecting' : 'disconnected'}
        agent={requesting ? 'connecting' : 'disconnected'}
      />
      {error !== null && <ErrorPanel error={error} onRetry={onStart} />}
      {phase === 'ended' && (
        <p className="notice" role="status" data-testid="call-ended">
          Call ended.
        </p>
      )}
      {error === null && (
        <div className="controls">
          <button
            type="button"
            className="button primary"
            data-testid="start-button"
            disabled={requesting}
            onClick={onStart}
          >
            {requesting ? 'Starting…' : 'Start voice call'}
          </button>
          {requesting && (
            <button type="button" className="button danger" data-testid="end-button" onClick={onCancel}>
              End call
            </button>
          )}
        </div>
      )}
      {entries.length > 0 && <ConversationLog entries={entries} live={false} />}
    </>
  );
}
