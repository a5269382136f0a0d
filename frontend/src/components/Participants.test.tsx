import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { Participants } from './Participants';

const YOU = { identity: 'user-1', name: 'Ada', role: 'you', speaking: false } as const;
const AGENT = { identity: 'agent-AJ_1', name: 'agent-AJ_1', role: 'agent', speaking: false } as const;

describe('Participants', () => {
  it('shows the caller, the agent and other people by name', () => {
    render(
      <Participants
        participants={[
          YOU,
          AGENT,
          { identity: 'user-2', name: 'Grace', role: 'person', speaking: false },
          { identity: 'user-3', name: 'user-3', role: 'person', speaking: false },
        ]}
      />,
    );
    const section = screen.getByTestId('participants');
    expect(within(section).getByRole('heading')).toHaveTextContent('In this call · 2 other people');
    const items = within(section).getAllByTestId('participant');
    expect(
      items.map((li) => [li.getAttribute('data-role'), li.getAttribute('data-identity'), li.textContent]),
    ).toEqual([
      ['you', 'user-1', 'You'],
      ['agent', 'agent-AJ_1', 'Agent'],
      ['person', 'user-2', 'Grace'],
      ['person', 'user-3', 'user-3'],
    ]);
  });

  it('counts no one else when only the caller and the agent are there', () => {
    render(<Participants participants={[YOU, AGENT]} />);
    expect(screen.getByRole('heading')).toHaveTextContent(/^In this call$/);
  });

  it('marks who is speaking now, with a label for screen readers', () => {
    render(
      <Participants
        participants={[
          YOU,
          { ...AGENT, speaking: true },
          { identity: 'user-2', name: 'Grace', role: 'person', speaking: true },
        ]}
      />,
    );
    const items = screen.getAllByTestId('participant');
    expect(items.map((li) => li.getAttribute('data-speaking'))).toEqual(['false', 'true', 'true']);
    expect(items.map((li) => li.textContent)).toEqual(['You', 'Agent (speaking)', 'Grace (speaking)']);
    // The dot is decoration; the words are what a screen reader reads.
    const [, agent] = items;
    expect(agent?.querySelector('.speaking-mark')).toHaveAttribute('aria-hidden', 'true');
    expect(within(agent as HTMLElement).getByText('(speaking)')).toHaveClass('visually-hidden');
  });
});
