import { useRoomContext } from '@livekit/components-react';
import type { Room } from 'livekit-client';
import { useEffect } from 'react';

declare global {
  interface Window {
    /** The call's LiveKit room, in pages built for browser tests only. */
    __voicefleetRoom?: Room;
  }
}

/**
 * In a page built with VITE_E2E_HOOKS=true, hands the call's room to browser tests so they can
 * run the LiveKit client's own reconnect scenarios. Other builds drop this code entirely.
 */
export function useTestHooks(): void {
  const room = useRoomContext();
  useEffect(() => {
    if (import.meta.env.VITE_E2E_HOOKS !== 'true') return undefined;
    window.__voicefleetRoom = room;
    return () => {
      delete window.__voicefleetRoom;
    };
  }, [room]);
}
