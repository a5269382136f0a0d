import { useEffect, useRef } from 'react';

export interface AgentJoinWatch {
  /** The room has connected at least once; the wait for the agent starts then. */
  readonly roomConnected: boolean;
  readonly agentPresent: boolean;
  readonly timeoutMs: number;
  readonly onTimeout: () => void;
  /** The agent was in the room and is gone. */
  readonly onLeft: () => void;
}

/**
 * Reports an agent that never joins within `timeoutMs` of connecting, or that leaves.
 * Callbacks are read through a ref so a re-render never restarts the clock.
 */
export function useAgentJoinWatch(watch: AgentJoinWatch): void {
  const { roomConnected, agentPresent, timeoutMs } = watch;
  const callbacks = useRef(watch);
  callbacks.current = watch;
  const joined = useRef(false);

  useEffect(() => {
    if (agentPresent) joined.current = true;
    else if (joined.current && roomConnected) callbacks.current.onLeft();
  }, [agentPresent, roomConnected]);

  const waiting = roomConnected && !agentPresent && !joined.current;
  useEffect(() => {
    if (!waiting) return undefined;
    const timer = setTimeout(() => callbacks.current.onTimeout(), timeoutMs);
    return () => clearTimeout(timer);
  }, [waiting, timeoutMs]);
}
