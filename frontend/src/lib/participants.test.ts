import { ParticipantKind } from 'livekit-client';
import { describe, expect, it } from 'vitest';
import { EMPTY_ROSTER, markSpeaking, remember, summarize } from './participants';

const me = { identity: 'user-1', name: 'Ada', kind: ParticipantKind.STANDARD, isLocal: true };
const agent = { identity: 'agent-AJ_1', name: '', kind: ParticipantKind.AGENT, isLocal: false };
const grace = { identity: 'user-2', name: ' Grace ', kind: ParticipantKind.STANDARD, isLocal: false };

describe('summarize', () => {
  it('tells the caller, the agent and other people apart by LiveKit participant kind', () => {
    expect(summarize(me)).toEqual({ identity: 'user-1', name: 'Ada', role: 'you' });
    expect(summarize(agent)).toEqual({ identity: 'agent-AJ_1', name: 'agent-AJ_1', role: 'agent' });
    expect(summarize(grace)).toEqual({ identity: 'user-2', name: 'Grace', role: 'person' });
  });

  it('never takes a name or identity as proof of being the agent', () => {
    const pretender = {
      identity: 'agent-AJ_2',
      name: 'Agent',
      kind: ParticipantKind.STANDARD,
      isLocal: false,
    };
    expect(summarize(pretender).role).toBe('person');
    for (const kind of [ParticipantKind.SIP, ParticipantKind.INGRESS, ParticipantKind.EGRESS]) {
      expect(summarize({ ...pretender, kind }).role).toBe('person');
    }
  });
});

describe('remember', () => {
  it('keeps everyone ever seen and returns the same roster when nothing changed', () => {
    const first = remember(EMPTY_ROSTER, [me, agent, grace]);
    expect([...first.keys()]).toEqual(['user-1', 'agent-AJ_1', 'user-2']);
    // Grace left: her lines still need her name.
    const later = remember(first, [me, agent]);
    expect(later).toBe(first);
    expect(later.get('user-2')?.name).toBe('Grace');
  });

  it('updates a participant whose name changed', () => {
    const first = remember(EMPTY_ROSTER, [grace]);
    const renamed = remember(first, [{ ...grace, name: 'Grace H.' }]);
    expect(renamed).not.toBe(first);
    expect(renamed.get('user-2')?.name).toBe('Grace H.');
    expect(first.get('user-2')?.name).toBe('Grace');
  });
});

describe('markSpeaking', () => {
  it('marks exactly the participants LiveKit lists as active speakers', () => {
    const present = [me, agent, grace].map(summarize);
    expect(markSpeaking(present, [{ identity: 'user-2' }, { identity: 'agent-AJ_1' }])).toEqual([
      { identity: 'user-1', name: 'Ada', role: 'you', speaking: false },
      { identity: 'agent-AJ_1', name: 'agent-AJ_1', role: 'agent', speaking: true },
      { identity: 'user-2', name: 'Grace', role: 'person', speaking: true },
    ]);
    expect(markSpeaking(present, []).every((p) => !p.speaking)).toBe(true);
  });
});
