/**
 * Invite links: a caller in a call shares the page's address with `?invite=<code>`; whoever
 * opens it joins that call. The code leaves the address bar once it has served, so a reload or
 * a bookmark does not try it again.
 */

export const INVITE_PARAM = 'invite';

/** Far above a real code; the token function refuses longer ones anyway. */
const MAX_CODE_LENGTH = 512;

/** The invite code in a page's query string, or null when there is none worth sending. */
export function readInviteCode(search: string): string | null {
  const code = new URLSearchParams(search).get(INVITE_PARAM)?.trim() ?? '';
  return code === '' || code.length > MAX_CODE_LENGTH ? null : code;
}

/** `pageUrl` with `code` as its invite, keeping its other query parameters and dropping any fragment. */
export function inviteLink(pageUrl: string, code: string): string {
  const url = new URL(pageUrl);
  url.searchParams.set(INVITE_PARAM, code);
  url.hash = '';
  return url.toString();
}

/** `pageUrl` without its invite; the same string when it has none. */
export function withoutInvite(pageUrl: string): string {
  const url = new URL(pageUrl);
  if (!url.searchParams.has(INVITE_PARAM)) return pageUrl;
  url.searchParams.delete(INVITE_PARAM);
  return url.toString();
}

/** Takes the invite out of the address bar without reloading or adding a history entry. */
export function forgetInviteInAddressBar(win: Window = window): void {
  const current = win.location.href;
  const next = withoutInvite(current);
  if (next !== current) win.history.replaceState(win.history.state, '', next);
}

/** When an invite stops working, as the caller's clock shows it, e.g. "14:05". */
export function formatExpiry(expiresAt: string, locale?: string): string {
  return new Date(expiresAt).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
}
