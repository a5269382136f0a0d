import { useEffect, useRef, useState } from 'react';

export interface AgentJoinWatch {
  /** The room has connected at least once; the wait for the agent starts then. */
  readonly roomConnected: boolean;
  readonly agentPresent: boolean;
  readonly timeoutMs: number;
  readonly onTimeout: () => void;
  /** The agent was in the room, is gone, and no other took its place within `timeoutMs`. */
  readonly onLeft: () => void;
}

/**
 * Reports an agent that never joins within `timeoutMs` of connecting, or that leaves and is
 * not replaced within `timeoutMs`: an agent whose worker died is dispatched into the room
 * again, so its departure starts a wait, not an error. Returns true during that wait.
 * Callbacks are read through a ref so a re-render never restarts the clock.
 */
export function useAgentJoinWatch(watch: AgentJoinWatch): boolean {
  const { roomConnected, agentPresent, timeoutMs } = watch;
  const callbacks = useRef(watch);
  callbacks.current = watch;
  const [joined, setJoined] = useState(false);
  if (agentPresent && !joined) setJoined(true);

  const waiting = roomConnected && !agentPresent && !joined;
  const returning = roomConnected && !agentPresent && joined;
  useEffect(() => {
    if (!waiting && !returning) return undefined;
    const timer = setTimeout(() => {
      if (returning) callbacks.current.onLeft();
      else callbacks.current.onTimeout();
    }, timeoutMs);
    return () => clearTimeout(timer);
  }, [waiting, returning, timeoutMs]);
  return returning;
}
