/** The caller's network address, as the per-address rate limit counts it. */

import type { ProxySettings } from "./config.ts";

/** What Deno.serve tells about the connection; absent when the handler is called directly. */
export interface Connection {
  readonly remoteAddr: Deno.Addr;
}

/**
 * With no trusted proxy the connection's own peer is the caller. Behind `trustedHops` proxies
 * that each append to the header, the entry that many places from the right is the address the
 * outermost trusted proxy saw; entries left of it are written by the caller and could be forged.
 */
export function clientAddress(
  req: Request,
  connection: Connection | undefined,
  proxy: ProxySettings,
): string {
  const peer = connection !== undefined && "hostname" in connection.remoteAddr
    ? connection.remoteAddr.hostname
    : "unknown";
  if (proxy.trustedHops === 0) return bucket(peer);
  const hops = (req.headers.get(proxy.header) ?? "").split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (hops.length === 0) return bucket(peer);
  return bucket(hops[Math.max(0, hops.length - proxy.trustedHops)]);
}

/**
 * One IPv6 user usually holds a whole /64, so it is counted as one address; anything that is
 * not an IP address is counted by its text, cut short.
 */
export function bucket(address: string): string {
  const bare = address.replace(/^\[|\](:\d+)?$/g, "").toLowerCase();
  const groups = ipv6Groups(bare);
  if (groups === null) return bare.slice(0, 64);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (mapped !== null) return mapped[1];
  return `${groups.slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address in hex, or null when it is not one. */
function ipv6Groups(address: string): string[] | null {
  if (!address.includes(":") || !/^[0-9a-f:.]+$/.test(address)) return null;
  const halves = address.split("::");
  if (halves.length > 2) return null;
  const parts = (half: string) => half === "" ? [] : half.split(":");
  const head = parts(halves[0]);
  const tail = halves.length === 2 ? parts(halves[1]) : [];
  // A trailing dotted IPv4 part stands for two groups.
  const last = tail.length > 0 ? tail : head;
  if (last.length > 0 && last[last.length - 1].includes(".")) last.splice(-1, 1, "0", "0");
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!groups.every((group) => /^[0-9a-f]{1,4}$/.test(group))) return null;
  return groups.map((group) => group.replace(/^0+(?=.)/, ""));
}
