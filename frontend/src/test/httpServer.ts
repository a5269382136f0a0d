import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

export interface TestServer {
  readonly url: string;
  readonly requests: Array<{
    method: string;
    url: string;
    body: string;
    contentType: string | undefined;
    authorization: string | undefined;
  }>;
  setHandler(handler: Handler): void;
  close(): Promise<void>;
}

/** A real HTTP server on a free loopback port, standing in for the token function. */
export async function startServer(initial: Handler): Promise<TestServer> {
  let handler = initial;
  const requests: TestServer['requests'] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        body,
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
      });
      handler(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/functions/v1/livekit-token`,
    requests,
    setHandler: (next) => {
      handler = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export const VALID_DETAILS = {
  serverUrl: 'ws://127.0.0.1:7880',
  roomName: 'voice-0123456789abcdef',
  participantName: 'guest-0123456789abcdef',
  participantToken: 'header.payload.signature',
  expiresAt: '2030-01-01T00:10:00.000Z',
} as const;
