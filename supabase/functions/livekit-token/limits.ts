/**
 * Rate limits and concurrent-call caps. Both are one primitive: a key may be used at most
 * `limit` times within a sliding window. A concurrent-call slot is a use whose window is the
 * time a call is assumed to last.
 */

import type { LimitSettings } from "./config.ts";
import { HttpError } from "./http.ts";

/**
 * Where uses are counted. The default keeps them in this instance's memory, so with several
 * instances each counts on its own; a deployment that needs one count across instances
 * implements this interface over a shared store (Redis, Postgres, Deno KV).
 */
export interface LimitStore {
  /**
   * Counts one use of `key` when fewer than `limit` uses fall within the `windowMs` before
   * `now`. Answers 0 when counted, otherwise the milliseconds until a use would be counted.
   */
  take(key: string, limit: number, windowMs: number, now: number): Promise<number>;
}

interface Uses {
  readonly windowMs: number;
  /** Times of the uses still in the window, oldest first; never more than the limit. */
  times: number[];
}

/** Bounded: past `maxKeys` it first drops expired keys, then the longest-known ones. */
export class MemoryLimitStore implements LimitStore {
  readonly #keys = new Map<string, Uses>();

  constructor(private readonly maxKeys = 100_000) {}

  take(key: string, limit: number, windowMs: number, now: number): Promise<number> {
    const uses = this.#keys.get(key) ?? this.#add(key, windowMs, now);
    uses.times = uses.times.filter((time) => time > now - windowMs);
    if (uses.times.length >= limit) {
      return Promise.resolve(uses.times[uses.times.length - limit] + windowMs - now);
    }
    uses.times.push(now);
    return Promise.resolve(0);
  }

  get size(): number {
    return this.#keys.size;
  }

  #add(key: string, windowMs: number, now: number): Uses {
    if (this.#keys.size >= this.maxKeys) this.#sweep(now);
    const uses = { windowMs, times: [] };
    this.#keys.set(key, uses);
    return uses;
  }

  #sweep(now: number): void {
    for (const [key, uses] of this.#keys) {
      if (uses.times.every((time) => time <= now - uses.windowMs)) this.#keys.delete(key);
    }
    // Still full: forget the oldest keys. Their callers get a fresh count, which only errs
    // towards letting someone in, never towards refusing.
    for (const key of this.#keys.keys()) {
      if (this.#keys.size < this.maxKeys) break;
      this.#keys.delete(key);
    }
  }
}

export type Clock = () => number;

/** The function's three limits over one store and one clock. */
export class Limits {
  constructor(
    private readonly settings: LimitSettings,
    private readonly store: LimitStore,
    private readonly now: Clock,
  ) {}

  /** Every request from one client address, before anything else is done for it. */
  async checkAddress(address: string): Promise<void> {
    const { perAddress, windowSeconds } = this.settings;
    await this.#take(
      `address:${address}`,
      perAddress,
      windowSeconds,
      `too many token requests from your network address: at most ${perAddress} per ${windowSeconds} s`,
    );
  }

  /** Token requests of one signed-in caller. */
  async checkIdentity(identity: string): Promise<void> {
    const { perIdentity, windowSeconds } = this.settings;
    await this.#take(
      `identity:${identity}`,
      perIdentity,
      windowSeconds,
      `too many token requests for this user: at most ${perIdentity} per ${windowSeconds} s`,
    );
  }

  /**
   * Holds one call slot of the caller for `callSlotSeconds`: a token counts as a call in
   * progress from the moment it is issued, whether or not it is used, because this function
   * never sees a call end.
   */
  async holdCallSlot(identity: string): Promise<void> {
    const { concurrentCalls, callSlotSeconds } = this.settings;
    await this.#take(
      `calls:${identity}`,
      concurrentCalls,
      callSlotSeconds,
      `too many calls at once for this user: at most ${concurrentCalls} within ${callSlotSeconds} s`,
    );
  }

  async #take(key: string, limit: number, windowSeconds: number, message: string): Promise<void> {
    if (limit === 0) return;
    const waitMs = await this.store.take(key, limit, windowSeconds * 1000, this.now());
    if (waitMs <= 0) return;
    throw new HttpError(429, message, {
      "Retry-After": String(Math.max(1, Math.ceil(waitMs / 1000))),
    });
  }
}
