/**
 * Who is in the room. Only a participant LiveKit marks as an agent (ParticipantKind.AGENT, set
 * by the token LiveKit issues to a dispatched agent) is the agent; anyone else who joins is a
 * person, named by their display name or identity. A name a person picks never makes them
 * the agent.
 */

import { ParticipantKind } from 'livekit-client';

export type Role = 'you' | 'agent' | 'person';

export interface ParticipantSummary {
  readonly identity: string;
  /** What the page shows: the display name, or the identity when there is none. */
  readonly name: string;
  readonly role: Role;
}

/** Someone in the room now, and whether LiveKit counts them among the active speakers. */
export interface PresentParticipant extends ParticipantSummary {
  readonly speaking: boolean;
}

/** The parts of a livekit-client Participant this module reads. */
export interface ParticipantLike {
  readonly identity: string;
  readonly name?: string | undefined;
  readonly kind: ParticipantKind;
  readonly isLocal: boolean;
}

/** Everyone seen in the call by identity, including those who left, so their lines keep a name. */
export type Roster = ReadonlyMap<string, ParticipantSummary>;

export const EMPTY_ROSTER: Roster = new Map();

export function summarize(participant: ParticipantLike): ParticipantSummary {
  const role: Role = participant.isLocal
    ? 'you'
    : participant.kind === ParticipantKind.AGENT
      ? 'agent'
      : 'person';
  const name = participant.name?.trim() || participant.identity;
  return { identity: participant.identity, name, role };
}

/** The roster with `present` added or updated; the same object when nothing changed. */
export function remember(roster: Roster, present: readonly ParticipantLike[]): Roster {
  let next: Map<string, ParticipantSummary> | null = null;
  for (const participant of present) {
    const summary = summarize(participant);
    const known = (next ?? roster).get(summary.identity);
    if (known?.name === summary.name && known.role === summary.role) continue;
    next ??= new Map(roster);
    next.set(summary.identity, summary);
  }
  return next ?? roster;
}

/** `present` with each one marked speaking when LiveKit lists them among the active `speakers`. */
export function markSpeaking(
  present: readonly ParticipantSummary[],
  speakers: readonly { readonly identity: string }[],
): PresentParticipant[] {
  const speaking = new Set(speakers.map((speaker) => speaker.identity));
  return present.map((summary) => ({ ...summary, speaking: speaking.has(summary.identity) }));
}

/** How a line names its speaker when the identity was never seen in the room. */
export function unknownSpeaker(identity: string): ParticipantSummary {
  return { identity, name: identity || 'Someone', role: 'person' };
}
