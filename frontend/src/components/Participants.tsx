import type { ParticipantSummary } from '../lib/participants';
import { SPEAKER_NAMES } from '../lib/transcript';

export interface ParticipantsProps {
  /** Who is in the room now, the caller first. */
  readonly participants: readonly ParticipantSummary[];
}

/**
 * Everyone in the call: the caller, the agent (only a participant LiveKit marks as one), and
 * any other people, by name.
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
          >
            {p.role === 'you' ? SPEAKER_NAMES.user : p.role === 'agent' ? SPEAKER_NAMES.agent : p.name}
          </li>
        ))}
      </ul>
    </section>
  );
}
