import type { AgentState } from '@livekit/components-react';
import { agentLabel, CONNECTION_LABELS, type ConnectionStatus } from '../lib/status';

export interface StatusBarProps {
  readonly connection: ConnectionStatus;
  readonly agent: AgentState;
  /** The agent dropped out of the call and another is on its way. */
  readonly agentReturning?: boolean;
}

/** Connection and agent state, announced politely to screen readers as they change. */
export function StatusBar({ connection, agent, agentReturning = false }: StatusBarProps) {
  return (
    <section className="status-bar" aria-label="Call status">
      <p role="status" aria-live="polite" className="status-line">
        <span className={`badge badge-${connection}`} data-testid="connection-state" data-state={connection}>
          <span className="visually-hidden">Connection: </span>
          {CONNECTION_LABELS[connection]}
        </span>
        <span className={`badge badge-agent-${agent}`} data-testid="agent-state" data-state={agent}>
          <span className="visually-hidden">Agent: </span>
          {agentLabel(agent)}
        </span>
      </p>
      {agentReturning && (
        <p className="notice" role="status" data-testid="agent-reconnecting-notice">
          The agent dropped out. Reconnecting the agent…
        </p>
      )}
      {connection === 'reconnecting' && (
        <p className="notice" role="status" data-testid="reconnecting-notice">
          The connection dropped. Reconnecting automatically…
        </p>
      )}
    </section>
  );
}
