import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { StatusBar } from './StatusBar';

describe('StatusBar', () => {
  it.each([
    ['connecting', 'Connecting…'],
    ['connected', 'Connected'],
    ['reconnecting', 'Reconnecting…'],
    ['disconnected', 'Not connected'],
  ] as const)('shows %s', (connection, label) => {
    render(<StatusBar connection={connection} agent="listening" />);
    const state = screen.getByTestId('connection-state');
    expect(state).toHaveAttribute('data-state', connection);
    expect(state).toHaveTextContent(label);
  });

  it.each([
    ['listening', 'Listening'],
    ['thinking', 'Thinking…'],
    ['speaking', 'Speaking'],
  ] as const)('shows the agent %s', (agent, label) => {
    render(<StatusBar connection="connected" agent={agent} />);
    expect(screen.getByTestId('agent-state')).toHaveAttribute('data-state', agent);
    expect(screen.getByTestId('agent-state')).toHaveTextContent(label);
  });

  it('announces status politely and explains an SDK reconnect', () => {
    const { rerender } = render(<StatusBar connection="connected" agent="listening" />);
    expect(screen.getAllByRole('status')[0]).toHaveAttribute('aria-live', 'polite');
    expect(screen.queryByTestId('reconnecting-notice')).not.toBeInTheDocument();
    rerender(<StatusBar connection="reconnecting" agent="listening" />);
    expect(screen.getByTestId('reconnecting-notice')).toHaveTextContent(/Reconnecting automatically/);
  });

  it('says the agent is being reconnected while a replacement is on its way', () => {
    const { rerender } = render(<StatusBar connection="connected" agent="disconnected" />);
    expect(screen.queryByTestId('agent-reconnecting-notice')).not.toBeInTheDocument();
    rerender(<StatusBar connection="connected" agent="disconnected" agentReturning />);
    expect(screen.getByTestId('agent-reconnecting-notice')).toHaveTextContent(/Reconnecting the agent/);
  });
});
