import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from './config';

describe('readConfig', () => {
  it('uses the documented defaults', () => {
    expect(readConfig({})).toEqual({
      tokenEndpoint: 'http://127.0.0.1:54321/functions/v1/livekit-token',
      agentName: 'voicefleet-demo',
      agentJoinTimeoutMs: 15000,
      auth: null,
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
      auth: null,
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

describe('readConfig: sign-in', () => {
  const project = { VITE_SUPABASE_URL: 'https://abcdefgh.supabase.co/' };

  it('turns sign-in on with the project URL and its publishable key, guests off', () => {
    const config = readConfig({ ...project, VITE_SUPABASE_PUBLISHABLE_KEY: ' sb_publishable_abc ' });
    expect(config.auth).toEqual({
      supabaseUrl: 'https://abcdefgh.supabase.co',
      supabaseKey: 'sb_publishable_abc',
      allowGuests: false,
    });
  });

  it('takes the legacy anon key, and the publishable key over it', () => {
    expect(readConfig({ ...project, VITE_SUPABASE_ANON_KEY: 'eyJanon' }).auth?.supabaseKey).toBe('eyJanon');
    const both = { ...project, VITE_SUPABASE_ANON_KEY: 'eyJanon', VITE_SUPABASE_PUBLISHABLE_KEY: 'sb_pk' };
    expect(readConfig(both).auth?.supabaseKey).toBe('sb_pk');
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    ['false', false],
    ['', false],
  ])('reads VITE_ALLOW_GUESTS=%j as %s', (value, allowed) => {
    const env = { ...project, VITE_SUPABASE_PUBLISHABLE_KEY: 'sb_pk', VITE_ALLOW_GUESTS: value };
    expect(readConfig(env).auth?.allowGuests).toBe(allowed);
  });

  it('leaves sign-in off when no Supabase variable is set', () => {
    expect(readConfig({ VITE_ALLOW_GUESTS: 'false' }).auth).toBeNull();
  });

  it.each([
    [
      { VITE_SUPABASE_URL: 'https://a.supabase.co' },
      /VITE_SUPABASE_PUBLISHABLE_KEY is not set but VITE_SUPABASE_URL is/,
    ],
    [{ VITE_SUPABASE_ANON_KEY: 'eyJanon' }, /VITE_SUPABASE_URL is not set but VITE_SUPABASE_ANON_KEY is/],
    [
      { VITE_SUPABASE_PUBLISHABLE_KEY: 'sb_pk' },
      /VITE_SUPABASE_URL is not set but VITE_SUPABASE_PUBLISHABLE_KEY/,
    ],
    [
      { VITE_SUPABASE_URL: 'a.supabase.co', VITE_SUPABASE_PUBLISHABLE_KEY: 'k' },
      /VITE_SUPABASE_URL must be an http/,
    ],
    [
      { ...project, VITE_SUPABASE_PUBLISHABLE_KEY: 'sb pk' },
      /VITE_SUPABASE_PUBLISHABLE_KEY must not contain spaces/,
    ],
    [
      { ...project, VITE_SUPABASE_PUBLISHABLE_KEY: 'k', VITE_ALLOW_GUESTS: 'yes' },
      /VITE_ALLOW_GUESTS must be true or false/,
    ],
    [
      { VITE_ALLOW_GUESTS: 'true' },
      /VITE_ALLOW_GUESTS offers anonymous sign-in, which needs VITE_SUPABASE_URL/,
    ],
  ])('rejects %j with one message naming the variable', (env, message) => {
    expect(() => readConfig(env)).toThrow(ConfigError);
    expect(() => readConfig(env)).toThrow(message);
  });
});
