import { useEffect, useRef } from 'react';
import type { CallError } from '../lib/callErrors';

export interface ErrorPanelProps {
  readonly error: CallError;
  readonly onRetry: () => void;
}

/** One problem, what to do about it, and a Retry button that takes focus. */
export function ErrorPanel({ error, onRetry }: ErrorPanelProps) {
  const retry = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    retry.current?.focus();
  }, [error]);

  return (
    <section className="error-panel" role="alert" aria-labelledby="error-title">
      <div data-testid="error-message" data-error-kind={error.kind}>
        <h2 id="error-title">{error.title}</h2>
        <p>{error.message}</p>
      </div>
      <button
        ref={retry}
        type="button"
        className="button primary"
        data-testid="retry-button"
        onClick={onRetry}
      >
        Retry
      </button>
    </section>
  );
}
