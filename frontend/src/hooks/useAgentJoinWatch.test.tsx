import { renderHook } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AgentJoinWatch, useAgentJoinWatch } from './useAgentJoinWatch';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function watch(overrides: Partial<AgentJoinWatch> = {}) {
  const onTimeout = vi.fn();
  const onLeft = vi.fn();
  const initial: AgentJoinWatch = {
    roomConnected: false,
    agentPresent: false,
    timeoutMs: 5000,
    onTimeout,
    onLeft,
    ...overrides,
  };
  const hook = renderHook((props: AgentJoinWatch) => useAgentJoinWatch(props), { initialProps: initial });
  const update = (next: Partial<AgentJoinWatch>) => hook.rerender({ ...initial, ...next });
  return { onTimeout, onLeft, update, returning: () => hook.result.current };
}

describe('useAgentJoinWatch', () => {
  it('starts the clock only once the room is connected', () => {
    const { onTimeout, update } = watch();
    vi.advanceTimersByTime(10_000);
    expect(onTimeout).not.toHaveBeenCalled();

    update({ roomConnected: true });
    vi.advanceTimersByTime(4999);
    expect(onTimeout).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onTimeout).toHaveBeenCalledTimes(1);
  });

  it('stays quiet when the agent joins in time', () => {
    const { onTimeout, onLeft, update } = watch({ roomConnected: true });
    vi.advanceTimersByTime(3000);
    update({ roomConnected: true, agentPresent: true });
    vi.advanceTimersByTime(60_000);
    expect(onTimeout).not.toHaveBeenCalled();
    expect(onLeft).not.toHaveBeenCalled();
  });

  it('does not restart the clock when the page re-renders with new callbacks', () => {
    const { onTimeout, update } = watch({ roomConnected: true });
    vi.advanceTimersByTime(3000);
    const later = vi.fn();
    update({ roomConnected: true, onTimeout: later });
    vi.advanceTimersByTime(2000);
    expect(onTimeout).not.toHaveBeenCalled();
    expect(later).toHaveBeenCalledTimes(1);
  });

  it('reports an agent that leaves after joining and is not replaced in time', () => {
    const { onTimeout, onLeft, update } = watch({ roomConnected: true, agentPresent: true });
    update({ roomConnected: true, agentPresent: false });
    vi.advanceTimersByTime(4999);
    expect(onLeft).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onLeft).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60_000);
    expect(onTimeout).not.toHaveBeenCalled();
  });

  it('waits for a replacement agent while the first is gone, then carries on', () => {
    const { onTimeout, onLeft, update, returning } = watch({ roomConnected: true, agentPresent: true });
    expect(returning()).toBe(false);
    update({ roomConnected: true, agentPresent: false });
    expect(returning()).toBe(true);
    vi.advanceTimersByTime(3000);
    update({ roomConnected: true, agentPresent: true });
    expect(returning()).toBe(false);
    vi.advanceTimersByTime(60_000);
    expect(onLeft).not.toHaveBeenCalled();
    expect(onTimeout).not.toHaveBeenCalled();
  });
});
