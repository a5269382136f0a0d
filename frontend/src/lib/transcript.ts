/**
 * Merges lk.transcription text streams and typed chat messages into one conversation.
 *
 * Agents publish each transcription segment under a stable lk.segment_id: user speech as a
 * run of interim streams followed by a final one, agent speech as one stream that grows as
 * the audio plays and is marked final when it closes.
 */

import { type Roster, unknownSpeaker } from './participants';

/** `user` is this page's caller, `agent` a participant LiveKit marks as an agent, `person` anyone else. */
export type Speaker = 'user' | 'agent' | 'person';

export interface ConversationEntry {
  readonly id: string;
  readonly kind: 'speech' | 'chat';
  readonly speaker: Speaker;
  /** Who said it: the participant identity the stream or message came from. */
  readonly speakerIdentity: string;
  /** How the log names the speaker: "You", "Agent", or a person's name. */
  readonly speakerName: string;
  readonly text: string;
  readonly final: boolean;
  readonly timestamp: number;
}

/** The parts of the components' TextStreamData this module reads. */
export interface TranscriptionStream {
  readonly text: string;
  readonly participantInfo: { readonly identity: string };
  readonly streamInfo: {
    readonly id: string;
    readonly timestamp: number;
    readonly attributes?: Readonly<Record<string, string>> | undefined;
  };
}

/** The parts of a received chat message this module reads. */
export interface ChatLike {
  readonly id: string;
  readonly timestamp: number;
  readonly message: string;
  readonly from?: { readonly isLocal: boolean; readonly identity?: string } | undefined;
}

export const SEGMENT_ID = 'lk.segment_id';
export const TRANSCRIPTION_FINAL = 'lk.transcription_final';

export interface TranscriptOptions {
  readonly localIdentity: string;
  /** While the agent speaks its newest line may still grow; afterwards it is settled. */
  readonly agentSpeaking: boolean;
  /** Everyone seen in the room; says who is an agent and what to call the others. */
  readonly roster: Roster;
}

export const SPEAKER_NAMES = { user: 'You', agent: 'Agent' } as const;

/** Who a participant identity is, as the conversation names them. */
export function speakerOf(
  identity: string,
  localIdentity: string,
  roster: Roster,
): Pick<ConversationEntry, 'speaker' | 'speakerIdentity' | 'speakerName'> {
  if (identity === localIdentity) {
    return { speaker: 'user', speakerIdentity: identity, speakerName: SPEAKER_NAMES.user };
  }
  const known = roster.get(identity) ?? unknownSpeaker(identity);
  return known.role === 'agent'
    ? { speaker: 'agent', speakerIdentity: identity, speakerName: SPEAKER_NAMES.agent }
    : { speaker: 'person', speakerIdentity: identity, speakerName: known.name };
}

export function transcriptEntries(
  streams: readonly TranscriptionStream[],
  options: TranscriptOptions,
): ConversationEntry[] {
  const bySegment = new Map<string, ConversationEntry>();
  for (const stream of streams) {
    const entry = toEntry(stream, options.localIdentity, options.roster);
    const earlier = bySegment.get(entry.id);
    // A later stream of the same segment replaces the text but keeps the original position.
    bySegment.set(entry.id, earlier ? { ...entry, timestamp: earlier.timestamp } : entry);
  }
  const entries = [...bySegment.values()].filter((entry) => entry.text.trim() !== '');
  return settle(sortByTime(entries), options.agentSpeaking);
}

function toEntry(stream: TranscriptionStream, localIdentity: string, roster: Roster): ConversationEntry {
  const attributes = stream.streamInfo.attributes ?? {};
  return {
    id: attributes[SEGMENT_ID] ?? stream.streamInfo.id,
    kind: 'speech',
    ...speakerOf(stream.participantInfo.identity, localIdentity, roster),
    text: stream.text,
    final: attributes[TRANSCRIPTION_FINAL] === 'true',
    timestamp: stream.streamInfo.timestamp,
  };
}

/**
 * A segment followed by a newer one from the same speaker is over even if its final
 * marker never arrived, and so is the agent's last line once it stops speaking.
 */
function settle(entries: ConversationEntry[], agentSpeaking: boolean): ConversationEntry[] {
  const lastIndex = new Map<string, number>();
  entries.forEach((entry, index) => {
    lastIndex.set(entry.speakerIdentity, index);
  });
  return entries.map((entry, index) => {
    const superseded = index !== lastIndex.get(entry.speakerIdentity);
    const agentDone = entry.speaker === 'agent' && !agentSpeaking;
    return entry.final || superseded || agentDone ? { ...entry, final: true } : entry;
  });
}

export function chatEntries(
  messages: readonly ChatLike[],
  options: Pick<TranscriptOptions, 'localIdentity' | 'roster'>,
): ConversationEntry[] {
  const roster = options.roster;
  return messages
    .filter((message) => message.message.trim() !== '')
    .map((message) => ({
      id: `chat-${message.id}`,
      kind: 'chat' as const,
      ...(message.from?.isLocal
        ? speakerOf(options.localIdentity, options.localIdentity, roster)
        : speakerOf(message.from?.identity ?? '', options.localIdentity, roster)),
      text: message.message,
      final: true,
      timestamp: message.timestamp,
    }));
}

/** One timeline; entries at the same moment keep their input order. */
export function mergeConversation(
  ...lists: ReadonlyArray<readonly ConversationEntry[]>
): ConversationEntry[] {
  return sortByTime(lists.flat());
}

function sortByTime(entries: readonly ConversationEntry[]): ConversationEntry[] {
  return entries
    .map((entry, order) => ({ entry, order }))
    .sort((a, b) => a.entry.timestamp - b.entry.timestamp || a.order - b.order)
    .map(({ entry }) => entry);
}
