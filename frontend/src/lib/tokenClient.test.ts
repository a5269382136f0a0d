import { afterEach, describe, expect, it } from 'vitest';
import { closedPort, sendJson, startServer, type TestServer, VALID_DETAILS } from '../test/httpServer';
import { rejectionOf } from '../test/rejection';
import {
  describeRejection,
  parseConnectionDetails,
  requestBody,
  requestConnectionDetails,
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
