/**
 * Merges lk.transcription text streams and typed chat messages into one conversation.
 *
 * Agents publish each transcription segment under a stable lk.segment_id: user speech as a
 * run of interim streams followed by a final one, agent speech as one stream that grows as
 * the audio plays and is marked final when it closes.
 */

export type Speaker = 'user' | 'agent';

export interface ConversationEntry {
  readonly id: string;
  readonly kind: 'speech' | 'chat';
  readonly speaker: Speaker;
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
  readonly from?: { readonly isLocal: boolean } | undefined;
}

export const SEGMENT_ID = 'lk.segment_id';
export const TRANSCRIPTION_FINAL = 'lk.transcription_final';

export interface TranscriptOptions {
  readonly localIdentity: string;
  /** While the agent speaks its newest line may still grow; afterwards it is settled. */
  readonly agentSpeaking: boolean;
}

export function transcriptEntries(
  streams: readonly TranscriptionStream[],
  options: TranscriptOptions,
): ConversationEntry[] {
  const bySegment = new Map<string, ConversationEntry>();
  for (const stream of streams) {
    const entry = toEntry(stream, options.localIdentity);
    const earlier = bySegment.get(entry.id);
    // A later stream of the same segment replaces the text but keeps the original position.
    bySegment.set(entry.id, earlier ? { ...entry, timestamp: earlier.timestamp } : entry);
  }
  const entries = [...bySegment.values()].filter((entry) => entry.text.trim() !== '');
  return settle(sortByTime(entries), options.agentSpeaking);
}

function toEntry(stream: TranscriptionStream, localIdentity: string): ConversationEntry {
  const attributes = stream.streamInfo.attributes ?? {};
  return {
    id: attributes[SEGMENT_ID] ?? stream.streamInfo.id,
    kind: 'speech',
    speaker: stream.participantInfo.identity === localIdentity ? 'user' : 'agent',
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
  const lastIndex: Record<Speaker, number> = { user: -1, agent: -1 };
  entries.forEach((entry, index) => {
    lastIndex[entry.speaker] = index;
  });
  return entries.map((entry, index) => {
    const superseded = index !== lastIndex[entry.speaker];
    const agentDone = entry.speaker === 'agent' && !agentSpeaking;
    return entry.final || superseded || agentDone ? { ...entry, final: true } : entry;
  });
}

export function chatEntries(messages: readonly ChatLike[]): ConversationEntry[] {
  return messages
    .filter((message) => message.message.trim() !== '')
    .map((message) => ({
      id: `chat-${message.id}`,
      kind: 'chat' as const,
      speaker: message.from?.isLocal ? ('user' as const) : ('agent' as const),
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
