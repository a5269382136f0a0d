import {
  BarVisualizer,
  StartAudio,
  useChat,
  useConnectionState,
  useLocalParticipant,
  useTrackToggle,
  useTranscriptions,
  useVoiceAssistant,
} from '@livekit/components-react';
import { ConnectionState, MediaDeviceFailure, Track } from 'livekit-client';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { useAgentJoinWatch } from '../hooks/useAgentJoinWatch';
import { useParticipantToken } from '../hooks/useParticipantToken';
import { useRoster } from '../hooks/useRoster';
import { useTestHooks } from '../hooks/useTestHooks';
import { agentLeftError, agentTimeoutError, type CallError, microphoneError } from '../lib/callErrors';
import type { Roster } from '../lib/participants';
import { agentStatus, connectionStatus } from '../lib/status';
import {
  type ChatLike,
  chatEntries,
  type ConversationEntry,
  mergeConversation,
  transcriptEntries,
} from '../lib/transcript';
import type { InviteDetails } from '../lib/tokenClient';
import { CallControls } from './CallControls';
import { ChatComposer } from './ChatComposer';
import { ConversationLog } from './ConversationLog';
import { InvitePanel } from './InvitePanel';
import { Participants } from './Participants';
import { StatusBar } from './StatusBar';

export interface CallStageProps {
  readonly agentJoinTimeoutMs: number;
  /** The token the call started with; invites use the newest one LiveKit sent since. */
  readonly participantToken: string;
  readonly requestInvite: (participantToken: string) => Promise<InviteDetails>;
  readonly onFailure: (error: CallError) => void;
  readonly onEnd: () => void;
  readonly onConversation: (entries: readonly ConversationEntry[]) => void;
}

/** The call as seen from inside the LiveKit room: reads the room through the components' hooks. */
export function CallStage({
  agentJoinTimeoutMs,
  participantToken,
  requestInvite,
  onFailure,
  onEnd,
  onConversation,
}: CallStageProps) {
  const state = useConnectionState();
  const roomConnected = useHasConnected(state);
  const assistant = useVoiceAssistant();
  const { send, chatMessages } = useChat();
  const { present, roster } = useRoster();
  const entries = useConversation(assistant.state === 'speaking', chatMessages, roster);
  const onDeviceError = useCallback(
    (err: Error) => onFailure(microphoneError(MediaDeviceFailure.getFailure(err))),
    [onFailure],
  );
  const microphone = useTrackToggle({ source: Track.Source.Microphone, onDeviceError });
  const currentToken = useParticipantToken(participantToken);
  const invite = useCallback(() => requestInvite(currentToken()), [requestInvite, currentToken]);

  useTestHooks();
  const agentReturning = useAgentJoinWatch({
    roomConnected,
    agentPresent: assistant.agent !== undefined,
    timeoutMs: agentJoinTimeoutMs,
    onTimeout: () => onFailure(agentTimeoutError(agentJoinTimeoutMs)),
    onLeft: () => onFailure(agentLeftError()),
  });
  useEffect(() => onConversation(entries), [entries, onConversation]);

  const connected = state === ConnectionState.Connected;
  return (
    <>
      <StatusBar
        connection={connectionStatus(state, !roomConnected)}
        agent={agentStatus(assistant.state, !roomConnected)}
        agentReturning={agentReturning}
      />
      <div className="visualizer" data-testid="agent-visualizer" aria-hidden="true">
        <BarVisualizer state={assistant.state} track={assistant.audioTrack} barCount={7} />
      </div>
      <StartAudio label="Allow audio playback" className="button primary" />
      {roomConnected && <Participants participants={present} />}
      <ConversationLog entries={entries} live />
      <ChatComposer disabled={!connected} onSend={send} />
      <CallControls
        muted={roomConnected && !microphone.enabled}
        muteDisabled={!connected || microphone.pending}
        onToggleMute={() => microphone.toggle().catch(() => undefined)}
        onEnd={onEnd}
      />
      {roomConnected && <InvitePanel requestInvite={invite} />}
    </>
  );
}

/** Sticky: true from the first successful connection on, through any reconnects. */
function useHasConnected(state: ConnectionState): boolean {
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (state === ConnectionState.Connected) setConnected(true);
  }, [state]);
  return connected || state === ConnectionState.Connected;
}

function useConversation(
  agentSpeaking: boolean,
  chatMessages: readonly ChatLike[],
  roster: Roster,
): ConversationEntry[] {
  const streams = useTranscriptions();
  const { localParticipant } = useLocalParticipant();
  const identity = localParticipant.identity;
  return useMemo(() => {
    const options = { localIdentity: identity, agentSpeaking, roster };
    return mergeConversation(transcriptEntries(streams, options), chatEntries(chatMessages, options));
  }, [streams, chatMessages, identity, agentSpeaking, roster]);
}
