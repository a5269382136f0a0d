import { render, screen, within } from '@testing-library/react';
import { ParticipantKind } from 'livekit-client';
import { describe, expect, it } from 'vitest';
import { remember } from '../lib/participants';
import {
  SEGMENT_ID,
  TRANSCRIPTION_FINAL,
  transcriptEntries,
  type TranscriptionStream,
} from '../lib/transcript';
import { ConversationLog } from './ConversationLog';

function userStream(id: string, text: string, final: boolean): TranscriptionStream {
  return {
    text,
    participantInfo: { identity: 'guest-1' },
    streamInfo: {
      id,
      timestamp: 10,
      attributes: { [SEGMENT_ID]: 'SG_1', [TRANSCRIPTION_FINAL]: String(final) },
    },
  };
}

const agentStream: TranscriptionStream = {
  text: 'Sure, one moment.',
  participantInfo: { identity: 'agent-AJ_9' },
  streamInfo: { id: 'TS_a', timestamp: 20, attributes: { [SEGMENT_ID]: 'SG_2' } },
};

const roster = remember(new Map(), [
  { identity: 'guest-1', kind: ParticipantKind.STANDARD, isLocal: true },
  { identity: 'agent-AJ_9', kind: ParticipantKind.AGENT, isLocal: false },
]);

function lines() {
  return within(screen.getByTestId('transcript')).queryAllByRole('listitem');
}

describe('ConversationLog', () => {
  it('replaces the interim line with the final one in place', () => {
    const options = { localIdentity: 'guest-1', agentSpeaking: false, roster };
    const { rerender } = render(
      <ConversationLog entries={transcriptEntries([userStream('TS_1', 'book a ta', false)], options)} live />,
    );
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toHaveAttribute('data-final', 'false');
    expect(lines()[0]).toHaveTextContent('book a ta');
    expect(lines()[0]).toHaveTextContent('still transcribing');

    const streams = [userStream('TS_1', 'book a ta', false), userStream('TS_2', 'book a table', true)];
    rerender(<ConversationLog entries={transcriptEntries(streams, options)} live />);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toHaveAttribute('data-final', 'true');
    expect(lines()[0]).toHaveTextContent('book a table');
    expect(lines()[0]).not.toHaveTextContent('still transcribing');
  });

  it('attributes each line to its speaker', () => {
    const entries = transcriptEntries([userStream('TS_1', 'hi there', true), agentStream], {
      localIdentity: 'guest-1',
      agentSpeaking: true,
      roster,
    });
    render(<ConversationLog entries={entries} live />);
    const [user, agent] = lines();
    expect(user).toHaveAttribute('data-speaker', 'user');
    expect(user).toHaveTextContent(/^You/);
    expect(agent).toHaveAttribute('data-speaker', 'agent');
    expect(agent).toHaveAttribute('data-final', 'false');
    expect(agent).toHaveTextContent(/^Agent/);
  });

  it('marks typed messages apart from speech', () => {
    render(
      <ConversationLog
        entries={[
          {
            id: 'chat-1',
            kind: 'chat',
            speaker: 'user',
            speakerIdentity: 'guest-1',
            speakerName: 'You',
            text: 'typed',
            final: true,
            timestamp: 1,
          },
        ]}
        live
      />,
    );
    const [line] = lines();
    expect(line).toHaveAttribute('data-testid', 'chat-message');
    expect(line).toHaveTextContent('(typed)');
  });

  it('names another person in the room by their name', () => {
    const withPerson = remember(roster, [
      { identity: 'user-2', name: 'Grace', kind: ParticipantKind.STANDARD, isLocal: false },
    ]);
    const entries = transcriptEntries(
      [
        {
          text: 'Can I join?',
          participantInfo: { identity: 'user-2' },
          streamInfo: { id: 'TS_g', timestamp: 30, attributes: { [SEGMENT_ID]: 'SG_g' } },
        },
      ],
      { localIdentity: 'guest-1', agentSpeaking: false, roster: withPerson },
    );
    render(<ConversationLog entries={entries} live />);
    const [line] = lines();
    expect(line).toHaveAttribute('data-speaker', 'person');
    expect(line).toHaveAttribute('data-speaker-identity', 'user-2');
    expect(line).toHaveTextContent(/^GraceCan I join\?/);
  });

  it('is a polite live log with a hint while empty', () => {
    render(<ConversationLog entries={[]} live />);
    const log = screen.getByRole('log', { name: 'Conversation transcript' });
    expect(log).toHaveAttribute('aria-live', 'polite');
    expect(log).toHaveTextContent(/Say hello/);
  });
});
