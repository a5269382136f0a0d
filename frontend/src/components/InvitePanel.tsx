import { useCallback, useEffect, useRef, useState } from 'react';
import { formatExpiry, inviteLink } from '../lib/invite';
import type { InviteDetails } from '../lib/tokenClient';

export interface InvitePanelProps {
  /** Asks the token function for a code to this call's room. */
  readonly requestInvite: () => Promise<InviteDetails>;
  /** The address the link starts from; the page's own by default. */
  readonly pageUrl?: string;
  /** Copies text; the browser's clipboard by default. */
  readonly copy?: (text: string) => Promise<void>;
}

type InviteState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'asking' }
  | { readonly kind: 'ready'; readonly link: string; readonly expiresAt: string }
  | { readonly kind: 'failed'; readonly message: string };

type CopyState = 'idle' | 'copied' | 'failed';

function clipboardCopy(text: string): Promise<void> {
  if (typeof navigator === 'undefined' || navigator.clipboard === undefined) {
    return Promise.reject(new Error('no clipboard'));
  }
  return navigator.clipboard.writeText(text);
}

/**
 * "Invite someone": asks for a code and shows a link to this page that joins the call. A refusal
 * (invites off, limits) shows the function's own message; the call goes on either way.
 */
export function InvitePanel({ requestInvite, pageUrl, copy = clipboardCopy }: InvitePanelProps) {
  const [state, setState] = useState<InviteState>({ kind: 'idle' });
  const [copied, setCopied] = useState<CopyState>('idle');
  const linkInput = useRef<HTMLInputElement>(null);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const ask = useCallback(() => {
    setState({ kind: 'asking' });
    setCopied('idle');
    requestInvite().then(
      (invite) => {
        if (!mounted.current) return;
        const link = inviteLink(pageUrl ?? window.location.href, invite.inviteCode);
        setState({ kind: 'ready', link, expiresAt: invite.expiresAt });
      },
      (err: unknown) => {
        if (!mounted.current) return;
        const message = err instanceof Error && err.message !== '' ? err.message : 'No invite could be made.';
        setState({ kind: 'failed', message });
      },
    );
  }, [requestInvite, pageUrl]);

  const copyLink = useCallback(
    (link: string) => {
      copy(link).then(
        () => {
          if (mounted.current) setCopied('copied');
        },
        () => {
          if (!mounted.current) return;
          // Without clipboard access, select the link so the caller can copy it by hand.
          linkInput.current?.select();
          setCopied('failed');
        },
      );
    },
    [copy],
  );

  const asking = state.kind === 'asking';
  return (
    <section className="invite" aria-labelledby="invite-title">
      <h2 id="invite-title" className="visually-hidden">
        Invite someone
      </h2>
      <button type="button" className="button" data-testid="invite-button" disabled={asking} onClick={ask}>
        {asking ? 'Making an invite…' : state.kind === 'ready' ? 'New invite link' : 'Invite someone'}
      </button>
      {state.kind === 'ready' && (
        <div className="invite-link">
          <label htmlFor="invite-link-input">Send this link to let someone join the call:</label>
          <div className="invite-link-row">
            <input
              ref={linkInput}
              id="invite-link-input"
              type="text"
              readOnly
              value={state.link}
              data-testid="invite-link"
              onFocus={(event) => event.currentTarget.select()}
            />
            <button
              type="button"
              className="button"
              data-testid="invite-copy"
              onClick={() => copyLink(state.link)}
            >
              Copy
            </button>
          </div>
          <p className="invite-expiry" data-testid="invite-expiry">
            Works until <time dateTime={state.expiresAt}>{formatExpiry(state.expiresAt)}</time>
            <span role="status">
              {copied === 'copied' && ' · Copied.'}
              {copied === 'failed' && ' · Copy it from the box: the browser did not allow copying.'}
            </span>
          </p>
        </div>
      )}
      {state.kind === 'failed' && (
        <p className="invite-error" role="alert" data-testid="invite-error">
          No invite: {state.message}
        </p>
      )}
    </section>
  );
}
