import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { CallControls } from './CallControls';

function Harness({ onEnd }: { onEnd: () => void }) {
  const [muted, setMuted] = useState(false);
  return (
    <CallControls muted={muted} muteDisabled={false} onToggleMute={() => setMuted((m) => !m)} onEnd={onEnd} />
  );
}

describe('CallControls', () => {
  it('toggles mute with a click and says which way it goes', async () => {
    render(<Harness onEnd={vi.fn()} />);
    const mute = screen.getByTestId('mute-button');
    expect(mute).toHaveAccessibleName('Mute microphone');
    expect(mute).toHaveAttribute('data-muted', 'false');

    await userEvent.click(mute);
    expect(mute).toHaveAccessibleName('Unmute microphone');
    expect(mute).toHaveAttribute('data-muted', 'true');

    await userEvent.click(mute);
    expect(mute).toHaveAttribute('data-muted', 'false');
  });

  it('works from the keyboard', async () => {
    const onEnd = vi.fn();
    render(<Harness onEnd={onEnd} />);
    await userEvent.tab();
    expect(screen.getByTestId('mute-button')).toHaveFocus();
    await userEvent.keyboard(' ');
    expect(screen.getByTestId('mute-button')).toHaveAttribute('data-muted', 'true');
    await userEvent.tab();
    expect(screen.getByTestId('end-button')).toHaveFocus();
    await userEvent.keyboard('{Enter}');
    expect(onEnd).toHaveBeenCalledTimes(1);
  });

  it('cannot mute before the microphone is up', () => {
    render(<CallControls muted={false} muteDisabled onToggleMute={vi.fn()} onEnd={vi.fn()} />);
    expect(screen.getByTestId('mute-button')).toBeDisabled();
    expect(screen.getByTestId('end-button')).toBeEnabled();
  });
});
