import { useEffect, useRef } from 'react';
import type { ConversationEntry } from '../lib/transcript';

export interface ConversationLogProps {
  readonly entries: readonly ConversationEntry[];
  readonly live: boolean;
}

/** Spoken and typed turns of everyone in the call, each naming its speaker, newest last, kept scrolled to the newest. */
export function ConversationLog({ entries, live }: ConversationLogProps) {
  const scroller = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const node = scroller.current;
    if (node) node.scrollTop = node.scrollHeight;
  }, [entries]);

  return (
    <section className="conversation" aria-labelledby="conversation-title">
      <h2 id="conversation-title">Conversation</h2>
      <div
        ref={scroller}
        className="transcript"
        data-testid="transcript"
        role="log"
        aria-live="polite"
        aria-label="Conversation transcript"
        tabIndex={0}
      >
        {entries.length === 0 ? (
          <p className="transcript-empty">
            {live ? 'Say hello — what you and the agent say appears here.' : 'No conversation yet.'}
          </p>
        ) : (
          <ol className="transcript-lines">
            {entries.map((entry) => (
              <TranscriptLine key={entry.id} entry={entry} />
            ))}
          </ol>
        )}
      </div>
    </section>
  );
}

function TranscriptLine({ entry }: { readonly entry: ConversationEntry }) {
  return (
    <li
      className={`line line-${entry.speaker}${entry.final ? '' : ' line-interim'}`}
      data-testid={entry.kind === 'speech' ? 'transcript-line' : 'chat-message'}
      data-speaker={entry.speaker}
      data-speaker-identity={entry.speakerIdentity}
      data-final={entry.final ? 'true' : 'false'}
      data-kind={entry.kind}
    >
      <span className="line-speaker">
        {entry.speakerName}
        {entry.kind === 'chat' && <span className="line-tag"> (typed)</span>}
      </span>
      <span className="line-text">{entry.text}</span>
      {!entry.final && <span className="visually-hidden"> (still transcribing)</span>}
    </li>
  );
}
