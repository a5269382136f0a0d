import { type ComponentType, useCallback, useEffect, useReducer, useState } from 'react';
import { CallSession, type CallSessionProps } from './components/CallSession';
import { ConversationLog } from './components/ConversationLog';
import { ErrorPanel } from './components/ErrorPanel';
import { SignIn } from './components/SignIn';
import { StatusBar } from './components/StatusBar';
import type { AppConfig } from './config';
import { type AccountState, useAccount } from './hooks/useAccount';
import type { Account, AuthService } from './lib/auth';
import { type CallError, classifyError, signInRequiredError } from './lib/callErrors';
import { callReducer, initialCallState } from './lib/callState';
import { forgetInviteInAddressBar, readInviteCode } from './lib/invite';
import {
  type ConnectionDetails,
  type InviteDetails,
  type InviteRequest,
  requestConnectionDetails,
  requestInviteCode,
  type TokenRequest,
} from './lib/tokenClient';
import type { ConversationEntry } from './lib/transcript';

export type TokenRequester = (endpoint: string, request: TokenRequest) => Promise<ConnectionDetails>;
export type InviteRequester = (endpoint: string, request: InviteRequest) => Promise<InviteDetails>;

export interface AppProps {
  readonly config: AppConfig;
  /** Sign-in, when the page is configured with a Supabase project; null: calls need no account. */
  readonly auth?: AuthService | null;
  /** Swappable so tests can drive the page without a LiveKit server. */
  readonly requestToken?: TokenRequester;
  readonly requestInvite?: InviteRequester;
  readonly Session?: ComponentType<CallSessionProps>;
}

export function App({
  config,
  auth = null,
  requestToken = requestConnectionDetails,
  requestInvite = requestInviteCode,
  Session = CallSession,
}: AppProps) {
  const [state, dispatch] = useReducer(callReducer, initialCallState);
  // Opened with ?invite=<code>: Start joins the call of whoever sent the link.
  const [inviteCode, setInviteCode] = useState(() => readInviteCode(window.location.search));
  const [entries, setEntries] = useState<readonly ConversationEntry[]>([]);
  const account = useAccount(auth);
  const { phase } = state;
  const attempt = phase.kind === 'idle' ? 0 : phase.attempt;

  // Signing out (here, in another tab, or by expiry) ends the call that the sign-in paid for,
  // and the conversation is not left on screen for whoever signs in next.
  useEffect(() => {
    if (account.kind !== 'signed-out') return;
    dispatch({ type: 'signed-out' });
    setEntries([]);
  }, [account.kind]);

  const start = useCallback(() => {
    setEntries([]);
    dispatch({ type: 'start' });
  }, []);

  // The invite has served once its call ends: a later Start is a call of one's own.
  useEffect(() => {
    if (phase.kind !== 'ended') return;
    setInviteCode(null);
    forgetInviteInAddressBar();
  }, [phase.kind]);

  useEffect(() => {
    if (phase.kind !== 'requesting-token') return;
    const call = async () => {
      const accessToken = await accessTokenOf(auth);
      return requestToken(config.tokenEndpoint, {
        agentName: config.agentName,
        inviteCode: inviteCode ?? undefined,
        accessToken,
      });
    };
    call().then(
      (details) => {
        // The code got its token: a reload must not use it again. Retry still can, from memory.
        if (inviteCode !== null) forgetInviteInAddressBar();
        dispatch({ type: 'token-received', attempt, details });
      },
      (err: unknown) =>
        dispatch({
          type: 'failed',
          attempt,
          error:
            err instanceof NoSession
              ? signInRequiredError()
              : classifyError(err, { tokenEndpoint: config.tokenEndpoint }),
        }),
    );
  }, [phase.kind, attempt, config, requestToken, auth, inviteCode]);

  const invite = useCallback(
    async (participantToken: string) => {
      const accessToken = await accessTokenOf(auth).catch((err: unknown) => {
        throw err instanceof NoSession ? new Error('You are signed out: sign in again to invite.') : err;
      });
      return requestInvite(config.tokenEndpoint, { participantToken, accessToken });
    },
    [auth, config.tokenEndpoint, requestInvite],
  );

  const fail = useCallback((error: CallError) => dispatch({ type: 'failed', attempt, error }), [attempt]);
  const end = useCallback(() => dispatch({ type: 'ended', attempt }), [attempt]);
  const signOut = useCallback(() => {
    auth?.signOut().catch(() => undefined);
  }, [auth]);

  return (
    <main className="app">
      <header className="app-header">
        <h1>voicefleet</h1>
        <p className="subtitle">
          Voice chat with agent <strong>{config.agentName}</strong>
        </p>
        {account.kind === 'signed-in' && <AccountBar account={account.account} onSignOut={signOut} />}
      </header>

      {inviteCode !== null && phase.kind !== 'in-call' && (
        <p className="notice" role="status" data-testid="invite-notice">
          You were invited: this page joins someone&apos;s call, with their agent already in it.
        </p>
      )}

      {auth !== null && !isSignedIn(account) ? (
        <SignedOut account={account} auth={auth} />
      ) : phase.kind === 'in-call' ? (
        <Session
          key={phase.attempt}
          details={phase.details}
          tokenEndpoint={config.tokenEndpoint}
          agentJoinTimeoutMs={config.agentJoinTimeoutMs}
          onFailure={fail}
          onEnded={end}
          onConversation={setEntries}
          requestInvite={invite}
        />
      ) : (
        <OutOfCall
          invited={inviteCode !== null}
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

function isSignedIn(account: AccountState): boolean {
  return account.kind === 'signed-in' || account.kind === 'no-sign-in';
}

/** No session was left to call with. */
class NoSession extends Error {}

/**
 * The Authorization for a token request: the user's access token, or none on a page without
 * sign-in. A session that ended elsewhere (another tab, expiry) signs this page out too.
 */
async function accessTokenOf(auth: AuthService | null): Promise<string | undefined> {
  if (auth === null) return undefined;
  const accessToken = await auth.accessToken();
  if (accessToken === null) {
    await auth.signOut().catch(() => undefined);
    throw new NoSession();
  }
  return accessToken;
}

function SignedOut({ account, auth }: { readonly account: AccountState; readonly auth: AuthService }) {
  if (account.kind === 'checking') {
    return (
      <p className="notice" role="status" data-testid="checking-sign-in">
        Checking your sign-in…
      </p>
    );
  }
  return (
    <SignIn
      guestsAllowed={auth.guestsAllowed}
      onSignIn={(email, password) => auth.signIn(email, password)}
      onGuest={() => auth.signInAsGuest()}
    />
  );
}

interface AccountBarProps {
  readonly account: Account;
  readonly onSignOut: () => void;
}

function AccountBar({ account, onSignOut }: AccountBarProps) {
  return (
    <div className="account-bar">
      <p data-testid="signed-in-as" data-user-id={account.userId} data-anonymous={String(account.anonymous)}>
        Signed in as <strong>{account.anonymous ? 'a guest' : (account.email ?? account.userId)}</strong>
      </p>
      <button type="button" className="button" data-testid="sign-out-button" onClick={onSignOut}>
        Sign out
      </button>
    </div>
  );
}

interface OutOfCallProps {
  /** The page was opened with an invite: Start joins someone's call. */
  readonly invited: boolean;
  readonly phase: 'idle' | 'requesting-token' | 'ended' | 'failed';
  readonly error: CallError | null;
  readonly entries: readonly ConversationEntry[];
  readonly onStart: () => void;
  readonly onCancel: () => void;
}

/** Before a call, while its token is fetched, and after it ended or failed. */
function OutOfCall({ invited, phase, error, entries, onStart, onCancel }: OutOfCallProps) {
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
            {requesting
              ? invited
                ? 'Joining…'
                : 'Starting…'
              : invited
                ? 'Join the call'
                : 'Start voice call'}
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
