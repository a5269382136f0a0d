import { useEffect, useState } from 'react';
import type { Account, AuthService } from '../lib/auth';

export type AccountState =
  /** The page has no sign-in (the keyless local demo): calls need no account. */
  | { readonly kind: 'no-sign-in' }
  /** Reading the stored session. */
  | { readonly kind: 'checking' }
  | { readonly kind: 'signed-out' }
  | { readonly kind: 'signed-in'; readonly account: Account };

function stateOf(account: Account | null): AccountState {
  return account === null ? { kind: 'signed-out' } : { kind: 'signed-in', account };
}

/** Who is signed in, kept current through sign-in, sign-out and expiry. */
export function useAccount(auth: AuthService | null): AccountState {
  const [state, setState] = useState<AccountState>(
    auth === null ? { kind: 'no-sign-in' } : { kind: 'checking' },
  );
  useEffect(() => {
    if (auth === null) {
      setState({ kind: 'no-sign-in' });
      return undefined;
    }
    let live = true;
    const unsubscribe = auth.onAccountChange((account) => {
      if (live) setState(stateOf(account));
    });
    auth.currentAccount().then(
      (account) => live && setState(stateOf(account)),
      () => live && setState({ kind: 'signed-out' }),
    );
    return () => {
      live = false;
      unsubscribe();
    };
  }, [auth]);
  return state;
}
