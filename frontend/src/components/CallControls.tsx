export interface CallControlsProps {
  readonly muted: boolean;
  readonly muteDisabled: boolean;
  readonly onToggleMute: () => void;
  readonly onEnd: () => void;
}

export function CallControls({ muted, muteDisabled, onToggleMute, onEnd }: CallControlsProps) {
  return (
    <div className="controls" role="group" aria-label="Call controls">
      <button
        type="button"
        className="button"
        data-testid="mute-button"
        data-muted={muted ? 'true' : 'false'}
        disabled={muteDisabled}
        onClick={onToggleMute}
      >
        {muted ? 'Unmute microphone' : 'Mute microphone'}
      </button>
      <button type="button" className="button danger" data-testid="end-button" onClick={onEnd}>
        End call
      </button>
    </div>
  );
}
