import { type FormEvent, useId, useState } from 'react';

export interface ChatComposerProps {
  readonly disabled: boolean;
  readonly onSend: (text: string) => Promise<unknown>;
}

/** Types a message to the agent; the text stays in the box if sending fails. */
export function ChatComposer({ disabled, onSend }: ChatComposerProps) {
  const inputId = useId();
  const [text, setText] = useState('');
  const [sending, setSending] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const message = text.trim();
    if (message === '' || sending) return;
    setSending(true);
    setFailure(null);
    try {
      await onSend(message);
      setText('');
    } catch (err) {
      setFailure(err instanceof Error ? err.message : 'unknown error');
    } finally {
      setSending(false);
    }
  }

  return (
    <form className="composer" onSubmit={submit} aria-label="Send a message">
      <label htmlFor={inputId}>Message to the agent</label>
      <div className="composer-row">
        <input
          id={inputId}
          data-testid="chat-input"
          type="text"
          autoComplete="off"
          maxLength={2000}
          value={text}
          disabled={disabled}
          onChange={(event) => setText(event.target.value)}
        />
        <button
          type="submit"
          className="button"
          data-testid="chat-send"
          disabled={disabled || sending || text.trim() === ''}
        >
          Send
        </button>
      </div>
      {failure !== null && (
        <p className="composer-error" role="alert">
          Message not sent: {failure}
        </p>
      )}
    </form>
  );
}
