import { afterEach, describe, expect, it } from 'vitest';
import { closedPort, sendJson, startServer, type TestServer, VALID_DETAILS } from '../test/httpServer';
import { rejectionOf } from '../test/rejection';
import {
  describeRejection,
  parseConnectionDetails,
  parseInviteDetails,
  requestBody,
  requestConnectionDetails,
  requestInviteCode,
  TokenRequestError,
} from './tokenClient';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function failureOf(promise: Promise<unknown>): Promise<TokenRequestError> {
  return rejectionOf(promise, TokenRequestError);
}

describe('requestConnectionDetails against a real HTTP server', () => {
  it('posts the agent name as JSON and returns the details', async () => {
    server = await startServer((_req, _body, res) => sendJson(res, 200, VALID_DETAILS));
    const details = await requestConnectionDetails(server.url, { agentName: 'voicefleet-demo' });
    expect(details).toEqual(VALID_DETAILS);
    expect(server.requests).toEqual([
      {
        method: 'POST',
        url: '/functions/v1/livekit-token',
        body: '{"agentName":"voicefleet-demo"}',
        contentType: 'application/json',
        authorization: undefined,
      },
    ]);
  });

  it("sends the user's access token as a bearer token, never in the body", async () => {
    server = await startServer((_req, _body, res) => sendJson(res, 200, VALID_DETAILS));
    await requestConnectionDetails(server.url, { agentName: 'front-desk', accessToken: 'eyJ.user.token' });
    expect(server.requests[0]?.authorization).toBe('Bearer eyJ.user.token');
    expect(JSON.parse(server.requests[0]?.body ?? '')).toEqual({ agentName: 'front-desk' });
  });

  it("surfaces the endpoint's JSON error message and status", async () => {
    server = await startServer((_req, _body, res) =>
      sendJson(res, 400, { error: 'roomName must be 1-64 characters of A-Z, a-z, 0-9, _ or -' }),
    );
    const err = await failureOf(requestConnectionDetails(server.url, { agentName: 'a' }));
    expect(err.failure).toBe('rejected');
    expect(err.status).toBe(400);
    expect(err.message).toBe('roomName must be 1-64 characters of A-Z, a-z, 0-9, _ or -');
  });

  it('falls back to the status when the error body is not JSON', async () => {
    server = await startServer((_req, _body, res) => {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      res.end('<html>Bad gateway</html>');
    });
    const err = await failureOf(requestConnectionDetails(server.url, { agentName: 'a' }));
    expect(err.failure).toBe('rejected');
    expect(err.message).toMatch(/HTTP 502/);
  });

  it('reports an endpoint with nothing listening as unreachable', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/functions/v1/livekit-token`;
    const err = await failureOf(requestConnectionDetails(url, { agentName: 'a' }));
    expect(err.failure).toBe('unreachable');
    expect(err.message).toMatch(/could not be reached/);
  });

  it('gives up on an endpoint that never answers', async () => {
    server = await startServer(() => {
      // Accept the request and never answer.
    });
    const err = await failureOf(requestConnectionDetails(server.url, { agentName: 'a' }, { timeoutMs: 200 }));
    expect(err.failure).toBe('unreachable');
    expect(err.message).toMatch(/did not answer within 0.2 s/);
  });

  it('rejects a 200 answer that is not JSON', async () => {
    server = await startServer((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
    });
    const err = await failureOf(requestConnectionDetails(server.url, { agentName: 'a' }));
    expect(err.failure).toBe('invalid-response');
  });
});

const INVITE = {
  inviteCode: 'v1.eyJyIjoidm9pY2UifQ.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  roomName: 'voice-0123456789abcdef',
  expiresAt: '2030-01-01T00:05:00.000Z',
} as const;

describe('invites against a real HTTP server', () => {
  it("asks for a code with the caller's participant token and their own Authorization", async () => {
    server = await startServer((_req, _body, res) => sendJson(res, 200, { ...INVITE, extra: true }));
    const invite = await requestInviteCode(server.url, {
      participantToken: 'lk.participant.token',
      accessToken: 'eyJ.user.token',
    });
    expect(invite).toEqual(INVITE);
    const [posted] = server.requests;
    expect([posted?.method, posted?.contentType, posted?.authorization]).toEqual([
      'POST',
      'application/json',
      'Bearer eyJ.user.token',
    ]);
    expect(posted?.body).toBe('{"invite_with_token":"lk.participant.token"}');
  });

  it('sends no Authorization for a code on a page without sign-in', async () => {
    server = await startServer((_req, _body, res) => sendJson(res, 200, INVITE));
    await requestInviteCode(server.url, { participantToken: 't' });
    expect(server.requests[0]?.authorization).toBeUndefined();
  });

  it("surfaces the function's refusal, e.g. invites off", async () => {
    const off = 'invites are off on this server: each room holds one caller (ROOM_MAX_CALLERS is 1)';
    server = await startServer((_req, _body, res) => sendJson(res, 403, { error: off }));
    const err = await failureOf(requestInviteCode(server.url, { participantToken: 't' }));
    expect(err.failure).toBe('rejected');
    expect(err.status).toBe(403);
    expect(err.message).toBe(off);
  });

  it('joins with a code: sends invite_code and no agent, with the same Authorization', async () => {
    server = await startServer((_req, _body, res) => sendJson(res, 200, VALID_DETAILS));
    const details = await requestConnectionDetails(server.url, {
      agentName: 'voicefleet-demo',
      inviteCode: INVITE.inviteCode,
      accessToken: 'eyJ.user.token',
    });
    expect(details).toEqual(VALID_DETAILS);
    expect(server.requests[0]?.body).toBe(JSON.stringify({ invite_code: INVITE.inviteCode }));
    expect(server.requests[0]?.authorization).toBe('Bearer eyJ.user.token');
  });

  it.each([
    [409, 'this invite is your own: you are already in its room'],
    [429, 'too many requests'],
  ])("reports a join refused with %i and the function's message", async (status, error) => {
    server = await startServer((_req, _body, res) => sendJson(res, status, { error }));
    const err = await failureOf(
      requestConnectionDetails(server.url, { agentName: 'a', inviteCode: INVITE.inviteCode }),
    );
    expect(err.status).toBe(status);
    expect(err.message).toBe(error);
  });
});

describe('parseInviteDetails', () => {
  it.each([null, [], { inviteCode: 'c', roomName: 'r' }, { ...INVITE, inviteCode: '' }])(
    'rejects %j',
    (value) => {
      expect(() => parseInviteDetails(value)).toThrow(/lacks inviteCode, roomName or expiresAt/);
    },
  );

  it('rejects an expiry that is not a time', () => {
    expect(() => parseInviteDetails({ ...INVITE, expiresAt: 'soon' })).toThrow(/not a time/);
  });
});

describe('parseConnectionDetails', () => {
  it('keeps only the contract fields', () => {
    expect(parseConnectionDetails({ ...VALID_DETAILS, extra: 1 })).toEqual(VALID_DETAILS);
  });

  it('names every missing or empty field', () => {
    const err = (() => {
      try {
        parseConnectionDetails({ serverUrl: 'wss://lk.example', participantToken: '' });
      } catch (e) {
        return e as TokenRequestError;
      }
      throw new Error('expected a failure');
    })();
    expect(err.message).toBe(
      "The token endpoint's answer lacks roomName, participantName, participantToken, expiresAt.",
    );
  });

  it.each([null, [], 'token', 42])('rejects %j', (value) => {
    expect(() => parseConnectionDetails(value)).toThrow(/other than a JSON object/);
  });

  it('rejects a serverUrl that is not a LiveKit URL', () => {
    expect(() => parseConnectionDetails({ ...VALID_DETAILS, serverUrl: 'ftp://x' })).toThrow(
      /not a LiveKit URL/,
    );
  });
});

describe('describeRejection and requestBody', () => {
  it('prefers a non-empty error string', () => {
    expect(describeRejection(401, '{"error":"access token has expired"}')).toBe('access token has expired');
    expect(describeRejection(500, '{"error":"   "}')).toMatch(/HTTP 500/);
    expect(describeRejection(500, '{"message":"x"}')).toMatch(/HTTP 500/);
  });

  it('sends only the agent: the function names the room', () => {
    expect(requestBody({ agentName: 'a' })).toEqual({ agentName: 'a' });
  });
});
