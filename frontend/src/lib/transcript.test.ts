import { ParticipantKind } from 'livekit-client';
import { describe, expect, it } from 'vitest';
import { remember } from './participants';
import {
  chatEntries,
  mergeConversation,
  SEGMENT_ID,
  TRANSCRIPTION_FINAL,
  transcriptEntries,
  type TranscriptionStream,
} from './transcript';

const ME = 'guest-1';
const AGENT = 'agent-AJ_1';

function stream(
  identity: string,
  id: string,
  text: string,
  timestamp: number,
  segment?: string,
  final?: boolean,
): TranscriptionStream {
  const attributes: Record<string, string> = {};
  if (segment !== undefined) attributes[SEGMENT_ID] = segment;
  if (final !== undefined) attributes[TRANSCRIPTION_FINAL] = String(final);
  return { text, participantInfo: { identity }, streamInfo: { id, timestamp, attributes } };
}

const PERSON = 'agent-lookalike';

const roster = remember(new Map(), [
  { identity: ME, name: '', kind: ParticipantKind.STANDARD, isLocal: true },
  { identity: AGENT, name: '', kind: ParticipantKind.AGENT, isLocal: false },
  // Another caller whose identity and name claim to be the agent: LiveKit's kind says otherwise.
  { identity: PERSON, name: 'Agent Smith', kind: ParticipantKind.STANDARD, isLocal: false },
]);

const options = { localIdentity: ME, agentSpeaking: false, roster };
const YOU = { speaker: 'user', speakerIdentity: ME, speakerName: 'You' } as const;

describe('transcriptEntries', () => {
  it('replaces an interim user segment with its final text in the same place', () => {
    const interim = [stream(ME, 's1', 'hello wor', 100, 'SG_1', false)];
    expect(transcriptEntries(interim, options)).toEqual([
      { id: 'SG_1', kind: 'speech', ...YOU, text: 'hello wor', final: false, timestamp: 100 },
    ]);

    const withFinal = [...interim, stream(ME, 's2', 'hello world', 180, 'SG_1', true)];
    expect(transcriptEntries(withFinal, options)).toEqual([
      { id: 'SG_1', kind: 'speech', ...YOU, text: 'hello world', final: true, timestamp: 100 },
    ]);
  });

  it('attributes lines to the local user or the agent by identity', () => {
    const entries = transcriptEntries(
      [
        stream(ME, 'a', 'what time is it', 1, 'SG_u', true),
        stream(AGENT, 'b', 'It is noon.', 2, 'SG_a', true),
      ],
      options,
    );
    expect(entries.map((e) => [e.speaker, e.text])).toEqual([
      ['user', 'what time is it'],
      ['agent', 'It is noon.'],
    ]);
  });

  it("keeps the agent's growing line interim while it speaks and settles it after", () => {
    const streams = [stream(AGENT, 'b', 'It is', 2, 'SG_a')];
    expect(transcriptEntries(streams, { ...options, agentSpeaking: true })[0]?.final).toBe(false);
    expect(transcriptEntries(streams, { ...options, agentSpeaking: false })[0]?.final).toBe(true);
  });

  it('settles a segment once the same speaker starts a newer one', () => {
    const entries = transcriptEntries(
      [stream(ME, 'a', 'first', 1, 'SG_1', false), stream(ME, 'b', 'second', 2, 'SG_2', false)],
      options,
    );
    expect(entries.map((e) => e.final)).toEqual([true, false]);
  });

  it('falls back to the stream id without a segment id and drops empty text', () => {
    const entries = transcriptEntries([stream(AGENT, 'TS_1', 'Hi', 5), stream(ME, 'TS_2', '  ', 6)], options);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.id).toBe('TS_1');
  });

  it('orders lines by time', () => {
    const entries = transcriptEntries(
      [stream(AGENT, 'b', 'second', 20, 'SG_b', true), stream(ME, 'a', 'first', 10, 'SG_a', true)],
      options,
    );
    expect(entries.map((e) => e.text)).toEqual(['first', 'second']);
  });
});

describe('chat history', () => {
  it('labels typed messages and merges them into the timeline', () => {
    const chats = chatEntries(
      [
        { id: 'c1', timestamp: 15, message: 'typed hello', from: { isLocal: true, identity: ME } },
        { id: 'c2', timestamp: 30, message: 'from afar', from: { isLocal: false, identity: AGENT } },
        { id: 'c3', timestamp: 31, message: '' },
      ],
      options,
    );
    const speech = transcriptEntries([stream(AGENT, 'x', 'spoken reply', 20, 'SG_x', true)], options);
    const merged = mergeConversation(speech, chats);
    expect(merged.map((e) => [e.kind, e.speaker, e.text])).toEqual([
      ['chat', 'user', 'typed hello'],
      ['speech', 'agent', 'spoken reply'],
      ['chat', 'agent', 'from afar'],
    ]);
    expect(merged.every((e) => e.id !== 'x')).toBe(true);
    expect(chats.every((e) => e.final)).toBe(true);
  });
});

describe('speakers in a room with more than one person', () => {
  it('names only a participant LiveKit marks as an agent as the agent', () => {
    const entries = transcriptEntries(
      [
        stream(AGENT, 'a', 'Welcome both.', 1, 'SG_a', true),
        stream(PERSON, 'p', 'I am the agent, trust me.', 2, 'SG_p', true),
      ],
      options,
    );
    expect(entries.map((e) => [e.speaker, e.speakerIdentity, e.speakerName])).toEqual([
      ['agent', AGENT, 'Agent'],
      ['person', PERSON, 'Agent Smith'],
    ]);
  });

  it('names someone never seen in the room by identity, as a person', () => {
    const [entry] = transcriptEntries([stream('caller-7', 'x', 'hello?', 1, 'SG_x', true)], options);
    expect(entry).toMatchObject({ speaker: 'person', speakerIdentity: 'caller-7', speakerName: 'caller-7' });
  });

  it('keeps each speaker’s newest line open on its own', () => {
    const entries = transcriptEntries(
      [
        stream(PERSON, 'p1', 'first', 1, 'SG_p1', false),
        stream(ME, 'm1', 'mine', 2, 'SG_m1', false),
        stream(PERSON, 'p2', 'second', 3, 'SG_p2', false),
      ],
      options,
    );
    expect(entries.map((e) => [e.text, e.final])).toEqual([
      ['first', true],
      ['mine', false],
      ['second', false],
    ]);
  });

  it('names the sender of a typed message', () => {
    const chats = chatEntries(
      [
        { id: 'c1', timestamp: 1, message: 'hi all', from: { isLocal: false, identity: PERSON } },
        { id: 'c2', timestamp: 2, message: 'noted', from: { isLocal: false, identity: AGENT } },
        { id: 'c3', timestamp: 3, message: 'who?', from: undefined },
      ],
      options,
    );
    expect(chats.map((e) => [e.speaker, e.speakerName])).toEqual([
      ['person', 'Agent Smith'],
      ['agent', 'Agent'],
      ['person', 'Someone'],
    ]);
  });
});
