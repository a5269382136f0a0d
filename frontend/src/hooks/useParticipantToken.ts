import { useRoomContext } from '@livekit/components-react';
import { EngineEvent, RoomEvent } from 'livekit-client';
import { useCallback, useEffect, useRef } from 'react';

/**
 * The caller's current LiveKit token: the one the call started with, or the newer one LiveKit
 * sent before that expired. An invite needs an unexpired token, and calls outlast the first.
 */
export function useParticipantToken(initial: string): () => string {
  const room = useRoomContext();
  const latest = useRef(initial);
  useEffect(() => {
    // The room makes a new engine for each connection attempt; follow whichever is current.
    let engine: (typeof room)['engine'] | undefined;
    const onRefreshed = (token: string) => {
      latest.current = token;
    };
    const follow = () => {
      const current = room.engine as (typeof room)['engine'] | undefined;
      if (current === engine) return;
      engine?.off(EngineEvent.TokenRefreshed, onRefreshed);
      engine = current;
      engine?.on(EngineEvent.TokenRefreshed, onRefreshed);
    };
    follow();
    room.on(RoomEvent.SignalConnected, follow).on(RoomEvent.Connected, follow);
    return () => {
      room.off(RoomEvent.SignalConnected, follow).off(RoomEvent.Connected, follow);
      engine?.off(EngineEvent.TokenRefreshed, onRefreshed);
    };
  }, [room]);
  return useCallback(() => latest.current, []);
}
