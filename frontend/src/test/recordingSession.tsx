import type { CallSessionProps } from '../components/CallSession';

/**
 * Stands in for the LiveKit room in App tests: App only sees it through CallSessionProps, which
 * the test reads back to play the room's part (end the call, report a failure, ask for an invite).
 */
export function recordingSession() {
  let latest: CallSessionProps | undefined;
  function RecordingSession(props: CallSessionProps) {
    latest = props;
    return <div data-testid="session" data-room={props.details.roomName} />;
  }
  return {
    Session: RecordingSession,
    current(): CallSessionProps {
      if (latest === undefined) throw new Error('no session rendered');
      return latest;
    },
  };
}
