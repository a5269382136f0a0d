import type { PresentParticipant } from '../lib/participants';
import { SPEAKER_NAMES } from '../lib/transcript';

export interface ParticipantsProps {
  /** Who is in the room now, the caller first, and who of them is speaking. */
  readonly participants: readonly PresentParticipant[];
}

/**
 * Everyone in the call: the caller, the agent (only a participant LiveKit marks as one), and
 * any other people, by name. Whoever is speaking now is marked, for screen readers too.
 */
export function Participants({ participants }: ParticipantsProps) {
  const others = participants.filter((p) => p.role === 'person').length;
  return (
    <section className="participants" aria-labelledby="participants-title" data-testid="participants">
      <h2 id="participants-title">
        In this call
        {others > 0 && (
          <span className="participant-role">
            {' '}
            · {others === 1 ? '1 other person' : `${others} other people`}
          </span>
        )}
      </h2>
      <ul className="participant-list">
        {participants.map((p) => (
          <li
            key={p.identity}
            className={`participant participant-${p.role}`}
            data-testid="participant"
            data-role={p.role}
            data-identity={p.identity}
            data-speaking={p.speaking ? 'true' : 'false'}
          >
            <span className="speaking-mark" aria-hidden="true" />
            {p.role === 'you' ? SPEAKER_NAMES.user : p.role === 'agent' ? SPEAKER_NAMES.agent : p.name}
            {p.speaking && <span className="visually-hidden"> (speaking)</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}
