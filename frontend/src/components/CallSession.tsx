import { LiveKitRoom, RoomAudioRenderer } from '@livekit/components-react';
import type { DisconnectReason, MediaDeviceFailure } from 'livekit-client';
import { useCallback, useRef } from 'react';
import {
  type CallError,
  classifyError,
  connectionLostError,
  isOrderlyDisconnect,
  microphoneError,
} from '../lib/callErrors';
import type { ConnectionDetails, InviteDetails } from '../lib/tokenClient';
import type { ConversationEntry } from '../lib/transcript';
import { CallStage } from './CallStage';

export interface CallSessionProps {
  readonly details: ConnectionDetails;
  readonly tokenEndpoint: string;
  readonly agentJoinTimeoutMs: number;
  readonly onFailure: (error: CallError) => void;
  readonly onEnded: () => void;
  readonly onConversation: (entries: readonly ConversationEntry[]) => void;
  /** An invite code to this call's room, asked for with the caller's current LiveKit token. */
  readonly requestInvite: (participantToken: string) => Promise<InviteDetails>;
}

/**
 * Joins the room with the minted token and publishes the microphone. The token already
 * dispatches the agent, so nothing here asks for one.
 */
export function CallSession(props: CallSessionProps) {
  const { details, tokenEndpoint } = props;
  const latest = useRef(props);
  latest.current = props;
  const everConnected = useRef(false);

  // LiveKitRoom reconnects when its callbacks change identity, so these never do.
  const onError = useCallback(
    (err: Error) =>
      latest.current.onFailure(classifyError(err, { tokenEndpoint, serverUrl: details.serverUrl })),
    [tokenEndpoint, details.serverUrl],
  );
  const onMediaDeviceFailure = useCallback(
    (failure?: MediaDeviceFailure) => latest.current.onFailure(microphoneError(failure)),
    [],
  );
  const onConnected = useCallback(() => {
    everConnected.current = true;
  }, []);
  const onDisconnected = useCallback((reason?: DisconnectReason) => {
    // A connection that never came up is reported through onError instead.
    if (!everConnected.current) return;
    if (isOrderlyDisconnect(reason)) latest.current.onEnded();
    else latest.current.onFailure(connectionLostError(reason));
  }, []);
  const onFailure = useCallback((error: CallError) => latest.current.onFailure(error), []);
  const onEnd = useCallback(() => latest.current.onEnded(), []);
  const onConversation = useCallback(
    (entries: readonly ConversationEntry[]) => latest.current.onConversation(entries),
    [],
  );
  const requestInvite = useCallback(
    (participantToken: string) => latest.current.requestInvite(participantToken),
    [],
  );

  return (
    <LiveKitRoom
      serverUrl={details.serverUrl}
      token={details.participantToken}
      connect
      audio
      video={false}
      onError={onError}
      onMediaDeviceFailure={onMediaDeviceFailure}
      onConnected={onConnected}
      onDisconnected={onDisconnected}
      className="call-room"
    >
      <RoomAudioRenderer />
      <CallStage
        agentJoinTimeoutMs={props.agentJoinTimeoutMs}
        participantToken={details.participantToken}
        requestInvite={requestInvite}
        onFailure={onFailure}
        onEnd={onEnd}
        onConversation={onConversation}
      />
    </LiveKitRoom>
  );
}
