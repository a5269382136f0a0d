import { useParticipants, useSpeakingParticipants } from '@livekit/components-react';
import { useMemo, useRef } from 'react';
import {
  EMPTY_ROSTER,
  markSpeaking,
  type PresentParticipant,
  remember,
  type Roster,
  summarize,
} from '../lib/participants';

/**
 * Who is in the room now (the caller first) and who of them is speaking, and everyone seen since
 * the call started, so that lines of someone who left still name them.
 */
export function useRoster(): { present: PresentParticipant[]; roster: Roster } {
  const participants = useParticipants();
  const speakers = useSpeakingParticipants();
  const seen = useRef<Roster>(EMPTY_ROSTER);
  const roster = useMemo(() => {
    // Idempotent: remembering the same participants again returns the same roster.
    seen.current = remember(seen.current, participants);
    return seen.current;
  }, [participants]);
  const present = useMemo(
    () => markSpeaking(participants.map(summarize), speakers),
    [participants, speakers],
  );
  return { present, roster };
}
