import { RoomContext } from '@livekit/components-react';
import { act, render, screen } from '@testing-library/react';
import { EngineEvent, Room, RoomEvent } from 'livekit-client';
import { useState } from 'react';
import { describe, expect, it } from 'vitest';
import { Participants } from '../components/Participants';
import { useParticipantToken } from './useParticipantToken';
import { useRoster } from './useRoster';

function RosterView() {
  const { present } = useRoster();
  return <Participants participants={present} />;
}

function renderInRoom(room: Room, children: React.ReactNode) {
  return render(<RoomContext.Provider value={room}>{children}</RoomContext.Provider>);
}

// A real livekit-client Room, never connected: the components' hooks read it as they would a call.
describe('useRoster', () => {
  it('marks the participants LiveKit reports as active speakers, and unmarks them when they stop', () => {
    const room = new Room();
    room.localParticipant.identity = 'user-1';
    renderInRoom(room, <RosterView />);
    const you = screen.getByTestId('participant');
    expect(you).toHaveAttribute('data-identity', 'user-1');
    expect(you).toHaveAttribute('data-speaking', 'false');

    act(() => {
      room.emit(RoomEvent.ActiveSpeakersChanged, [room.localParticipant]);
    });
    expect(screen.getByTestId('participant')).toHaveAttribute('data-speaking', 'true');
    expect(screen.getByTestId('participant')).toHaveTextContent('You (speaking)');

    act(() => {
      room.emit(RoomEvent.ActiveSpeakersChanged, []);
    });
    expect(screen.getByTestId('participant')).toHaveAttribute('data-speaking', 'false');
  });
});

function TokenProbe({ initial }: { readonly initial: string }) {
  const current = useParticipantToken(initial);
  const [shown, setShown] = useState('');
  return (
    <button type="button" onClick={() => setShown(current())}>
      {shown}
    </button>
  );
}

describe('useParticipantToken', () => {
  it('gives the first token until LiveKit sends a refreshed one', async () => {
    const room = new Room();
    renderInRoom(room, <TokenProbe initial="first.token" />);
    const probe = screen.getByRole('button');
    act(() => probe.click());
    expect(probe).toHaveTextContent('first.token');

    act(() => {
      room.engine.emit(EngineEvent.TokenRefreshed, 'refreshed.token');
    });
    act(() => probe.click());
    expect(probe).toHaveTextContent('refreshed.token');
  });

  it('follows the engine of a later connection attempt', () => {
    const room = new Room();
    renderInRoom(room, <TokenProbe initial="first.token" />);
    const old = room.engine;
    // What Room does when a connection attempt replaces a reconnect: a fresh engine.
    (room as unknown as { recreateEngine(sendLeave: boolean): void }).recreateEngine(false);
    const fresh = room.engine;
    expect(fresh).not.toBe(old);
    act(() => {
      room.emit(RoomEvent.SignalConnected);
      old.emit(EngineEvent.TokenRefreshed, 'stale.token');
      fresh.emit(EngineEvent.TokenRefreshed, 'new.engine.token');
    });
    const probe = screen.getByRole('button');
    act(() => probe.click());
    expect(probe).toHaveTextContent('new.engine.token');
  });
});
