import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from './config';

describe('readConfig', () => {
  it('uses the documented defaults', () => {
    expect(readConfig({})).toEqual({
      tokenEndpoint: 'http://127.0.0.1:54321/functions/v1/livekit-token',
      agentName: 'voicefleet-demo',
      agentJoinTimeoutMs: 15000,
    });
  });

  it('reads every variable', () => {
    const config = readConfig({
      VITE_TOKEN_ENDPOINT: ' https://project.supabase.co/functions/v1/livekit-token ',
      VITE_AGENT_NAME: 'front-desk',
      VITE_AGENT_JOIN_TIMEOUT_MS: '3000',
    });
    expect(config).toEqual({
      tokenEndpoint: 'https://project.supabase.co/functions/v1/livekit-token',
      agentName: 'front-desk',
      agentJoinTimeoutMs: 3000,
    });
  });

  it('accepts a same-origin path', () => {
    expect(readConfig({ VITE_TOKEN_ENDPOINT: '/api/livekit-token' }).tokenEndpoint).toBe(
      '/api/livekit-token',
    );
  });

  it.each([
    [{ VITE_TOKEN_ENDPOINT: 'ftp://files.test/token' }, /VITE_TOKEN_ENDPOINT must be an http/],
    [{ VITE_TOKEN_ENDPOINT: 'http://[bad' }, /VITE_TOKEN_ENDPOINT is not a valid URL/],
    [{ VITE_AGENT_NAME: 'my agent' }, /VITE_AGENT_NAME must be 1-64/],
    [{ VITE_AGENT_JOIN_TIMEOUT_MS: '15s' }, /VITE_AGENT_JOIN_TIMEOUT_MS must be a whole number/],
    [{ VITE_AGENT_JOIN_TIMEOUT_MS: '10' }, /from 1000 to 600000/],
  ])('rejects %j with one message naming the variable', (env, message) => {
    expect(() => readConfig(env)).toThrow(ConfigError);
    expect(() => readConfig(env)).toThrow(message);
  });
});
