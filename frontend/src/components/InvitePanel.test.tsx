import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it } from 'vitest';
import { sendJson, startServer, type TestServer } from '../test/httpServer';
import { requestInviteCode } from '../lib/tokenClient';
import { InvitePanel } from './InvitePanel';

const CODE = 'v1.eyJyIjoidm9pY2UifQ.Xb3k_-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const EXPIRES_AT = '2030-01-01T12:05:00.000Z';
const PAGE = 'https://voice.example/?lang=en';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function renderWith(status: number, body: unknown, copy?: (text: string) => Promise<void>) {
  const s = await startServer((_req, _body, res) => sendJson(res, status, body));
  server = s;
  const requestInvite = () => requestInviteCode(s.url, { participantToken: 'lk.token', accessToken: 'at' });
  render(<InvitePanel requestInvite={requestInvite} pageUrl={PAGE} {...(copy ? { copy } : {})} />);
  return s;
}

describe('InvitePanel', () => {
  it('asks for a code and shows the invite link with its expiry', async () => {
    const s = await renderWith(200, { inviteCode: CODE, roomName: 'voice-1', expiresAt: EXPIRES_AT });
    expect(screen.queryByTestId('invite-link')).not.toBeInTheDocument();
    await userEvent.click(screen.getByTestId('invite-button'));
    const link = await screen.findByTestId('invite-link');
    expect(link).toHaveValue(`https://voice.example/?lang=en&invite=${CODE}`);
    expect(link).toHaveAccessibleName('Send this link to let someone join the call:');
    expect(screen.getByTestId('invite-expiry').querySelector('time')).toHaveAttribute('datetime', EXPIRES_AT);
    expect(s.requests.map((r) => [r.body, r.authorization])).toEqual([
      ['{"invite_with_token":"lk.token"}', 'Bearer at'],
    ]);
    expect(screen.getByTestId('invite-button')).toHaveTextContent('New invite link');
  });

  it('copies the link to the clipboard', async () => {
    const user = userEvent.setup();
    await renderWith(200, { inviteCode: CODE, roomName: 'voice-1', expiresAt: EXPIRES_AT });
    await user.click(screen.getByTestId('invite-button'));
    await screen.findByTestId('invite-link');
    await user.click(screen.getByTestId('invite-copy'));
    expect(await screen.findByText(/Copied\./)).toBeInTheDocument();
    await expect(navigator.clipboard.readText()).resolves.toBe(
      `https://voice.example/?lang=en&invite=${CODE}`,
    );
  });

  it('selects the link for copying by hand when the browser refuses the clipboard', async () => {
    await renderWith(200, { inviteCode: CODE, roomName: 'voice-1', expiresAt: EXPIRES_AT }, () =>
      Promise.reject(new Error('denied')),
    );
    await userEvent.click(screen.getByTestId('invite-button'));
    const link = await screen.findByTestId<HTMLInputElement>('invite-link');
    await userEvent.click(screen.getByTestId('invite-copy'));
    expect(await screen.findByText(/Copy it from the box/)).toBeInTheDocument();
    expect([link.selectionStart, link.selectionEnd]).toEqual([0, link.value.length]);
  });

  it("shows the function's own message when it refuses, and can ask again", async () => {
    const off = 'invites are off on this server: each room holds one caller (ROOM_MAX_CALLERS is 1)';
    const s = await renderWith(403, { error: off });
    await userEvent.click(screen.getByTestId('invite-button'));
    const error = await screen.findByTestId('invite-error');
    expect(error).toHaveTextContent(off);
    expect(error).toHaveAttribute('role', 'alert');
    expect(screen.queryByTestId('invite-link')).not.toBeInTheDocument();

    s.setHandler((_req, _body, res) =>
      sendJson(res, 200, { inviteCode: CODE, roomName: 'voice-1', expiresAt: EXPIRES_AT }),
    );
    await userEvent.click(screen.getByTestId('invite-button'));
    await screen.findByTestId('invite-link');
    expect(screen.queryByTestId('invite-error')).not.toBeInTheDocument();
  });

  it('disables the button while the code is on its way', async () => {
    server = await startServer(() => {
      // Never answers.
    });
    const url = server.url;
    render(
      <InvitePanel requestInvite={() => requestInviteCode(url, { participantToken: 't' })} pageUrl={PAGE} />,
    );
    await userEvent.click(screen.getByTestId('invite-button'));
    expect(screen.getByTestId('invite-button')).toBeDisabled();
    expect(screen.getByTestId('invite-button')).toHaveTextContent('Making an invite…');
  });
});
