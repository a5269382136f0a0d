import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ChatComposer } from './ChatComposer';

describe('ChatComposer', () => {
  it('sends the trimmed text with Enter and clears the box', async () => {
    const onSend = vi.fn(() => Promise.resolve());
    render(<ChatComposer disabled={false} onSend={onSend} />);
    const input = screen.getByLabelText('Message to the agent');
    await userEvent.type(input, '  what are your hours?  {Enter}');
    expect(onSend).toHaveBeenCalledWith('what are your hours?');
    expect(input).toHaveValue('');
  });

  it('keeps the text and says why when sending fails', async () => {
    const onSend = vi.fn(() => Promise.reject(new Error('not connected')));
    render(<ChatComposer disabled={false} onSend={onSend} />);
    const input = screen.getByLabelText('Message to the agent');
    await userEvent.type(input, 'hello');
    await userEvent.click(screen.getByTestId('chat-send'));
    expect(await screen.findByRole('alert')).toHaveTextContent('Message not sent: not connected');
    expect(input).toHaveValue('hello');
  });

  it('does not send blank messages or while disabled', async () => {
    const onSend = vi.fn(() => Promise.resolve());
    const { rerender } = render(<ChatComposer disabled={false} onSend={onSend} />);
    await userEvent.type(screen.getByLabelText('Message to the agent'), '   {Enter}');
    expect(screen.getByTestId('chat-send')).toBeDisabled();
    rerender(<ChatComposer disabled onSend={onSend} />);
    expect(screen.getByLabelText('Message to the agent')).toBeDisabled();
    expect(onSend).not.toHaveBeenCalled();
  });
});
