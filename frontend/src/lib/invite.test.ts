import { afterEach, describe, expect, it } from 'vitest';
import { forgetInviteInAddressBar, formatExpiry, inviteLink, readInviteCode, withoutInvite } from './invite';

const CODE = 'v1.eyJyIjoidm9pY2UifQ.Xb3k_-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

afterEach(() => {
  window.history.replaceState(null, '', '/');
});

describe('readInviteCode', () => {
  it('reads the code of ?invite=', () => {
    expect(readInviteCode(`?invite=${CODE}`)).toBe(CODE);
    expect(readInviteCode(`?lang=en&invite=${encodeURIComponent(CODE)}`)).toBe(CODE);
  });

  it('finds none in an address without one, or with an empty or oversized one', () => {
    expect(readInviteCode('')).toBeNull();
    expect(readInviteCode('?lang=en')).toBeNull();
    expect(readInviteCode('?invite=')).toBeNull();
    expect(readInviteCode('?invite=%20%20')).toBeNull();
    expect(readInviteCode(`?invite=${'a'.repeat(513)}`)).toBeNull();
  });
});

describe('inviteLink and withoutInvite', () => {
  it("builds the page's address with the code, keeping other parameters and dropping the fragment", () => {
    expect(inviteLink('https://voice.example/app/', CODE)).toBe(`https://voice.example/app/?invite=${CODE}`);
    expect(inviteLink('https://voice.example/?lang=en#log', CODE)).toBe(
      `https://voice.example/?lang=en&invite=${CODE}`,
    );
    // An invitee inviting someone else replaces their own code rather than adding a second one.
    expect(inviteLink('https://voice.example/?invite=old', CODE)).toBe(
      `https://voice.example/?invite=${CODE}`,
    );
  });

  it('reads back the code it put in', () => {
    const link = new URL(inviteLink('https://voice.example/', CODE));
    expect(readInviteCode(link.search)).toBe(CODE);
  });

  it('takes the code out and leaves the rest', () => {
    expect(withoutInvite(`https://voice.example/?lang=en&invite=${CODE}`)).toBe(
      'https://voice.example/?lang=en',
    );
    expect(withoutInvite(`https://voice.example/?invite=${CODE}`)).toBe('https://voice.example/');
    expect(withoutInvite('https://voice.example/?lang=en')).toBe('https://voice.example/?lang=en');
  });
});

describe('forgetInviteInAddressBar', () => {
  it('replaces the address without adding a history entry', () => {
    window.history.replaceState(null, '', `/?lang=en&invite=${CODE}`);
    const entries = window.history.length;
    forgetInviteInAddressBar();
    expect(window.location.search).toBe('?lang=en');
    expect(window.history.length).toBe(entries);
  });
});

describe('formatExpiry', () => {
  it('gives the hour and minute', () => {
    const at = new Date(2030, 0, 1, 14, 5).toISOString();
    expect(formatExpiry(at, 'en-GB')).toBe('14:05');
  });
});
