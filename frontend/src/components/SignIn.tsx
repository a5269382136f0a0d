import { type FormEvent, useState } from 'react';
import { SignInError } from '../lib/auth';

export interface SignInProps {
  readonly guestsAllowed: boolean;
  readonly onSignIn: (email: string, password: string) => Promise<void>;
  readonly onGuest: () => Promise<void>;
}

/** Shown instead of the call controls while nobody is signed in: says what to do, and lets them. */
export function SignIn({ guestsAllowed, onSignIn, onGuest }: SignInProps) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const attempt = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err instanceof SignInError ? err.message : 'Sign-in failed. Try again.');
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void attempt(() => onSignIn(email.trim(), password));
  };

  return (
    <section className="sign-in" aria-labelledby="sign-in-title" data-testid="sign-in">
      <h2 id="sign-in-title">Sign in to call the agent</h2>
      <p data-testid="signed-out-notice">
        {guestsAllowed
          ? 'Calls need a sign-in: use your account, or continue as a guest.'
          : 'Calls need a sign-in: use the email and password of your account.'}
      </p>
      <form className="sign-in-form" onSubmit={submit} data-testid="sign-in-form">
        <Field label="Email" type="email" autoComplete="email" value={email} onChange={setEmail} />
        <Field
          label="Password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={setPassword}
        />
        {error !== null && (
          <p className="sign-in-error" role="alert" data-testid="sign-in-error">
            {error}
          </p>
        )}
        <div className="controls">
          <button type="submit" className="button primary" disabled={busy} data-testid="sign-in-button">
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
          {guestsAllowed && (
            <button
              type="button"
              className="button"
              disabled={busy}
              onClick={() => void attempt(onGuest)}
              data-testid="guest-button"
            >
              Continue as guest
            </button>
          )}
        </div>
      </form>
    </section>
  );
}

interface FieldProps {
  readonly label: 'Email' | 'Password';
  readonly type: 'email' | 'password';
  readonly autoComplete: string;
  readonly value: string;
  readonly onChange: (value: string) => void;
}

/** A required input with its label; its test id is `sign-in-<type>`. */
function Field({ label, type, autoComplete, value, onChange }: FieldProps) {
  return (
    <label>
      {label}
      <input
        type={type}
        name={type}
        autoComplete={autoComplete}
        required
        value={value}
        onChange={(event) => onChange(event.target.value)}
        data-testid={`sign-in-${type}`}
      />
    </label>
  );
}
