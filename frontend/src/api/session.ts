/**
 * The access token in memory and its renewal.
 *
 * The refresh token never reaches JavaScript: it lives in the httpOnly `collabry_refresh` cookie
 * (Path=/api/auth, SameSite=Strict), so `POST /api/auth/refresh` with an empty body renews the
 * pair. Refresh tokens rotate and a reused one revokes the whole login, so renewals are
 * serialised: one at a time in this tab (callers share the promise in flight) and, through the
 * Web Locks API, across the tabs of this browser (the second tab then presents the cookie the
 * first one just received).
 */

import { ApiError } from "./errors";

export interface Tokens {
  accessToken: string;
  expiresIn: number; // seconds
}

export interface SessionDeps {
  /** POST /api/auth/refresh; resolves with the new tokens or rejects with an ApiError. */
  refresh: () => Promise<Tokens>;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Runs `fn` while holding a lock shared by every tab (navigator.locks) when there is one. */
  lock?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Renew this long before the token expires (ms). */
  margin?: number;
  /** After a failed scheduled renewal (network), try again after this long (ms). */
  retryDelay?: number;
}

export type SessionListener = (token: string | null, reason: "set" | "refreshed" | "cleared" | "expired") => void;

export class Session {
  private token: string | null = null;
  private expiresAt = 0;
  private timer: unknown = null;
  private inflight: Promise<string> | null = null;
  private readonly listeners = new Set<SessionListener>();
  private readonly deps: Required<Omit<SessionDeps, "lock">> & Pick<SessionDeps, "lock">;

  constructor(deps: SessionDeps) {
    this.deps = {
      now: () => Date.now(),
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      margin: 60_000,
      retryDelay: 5_000,
      ...deps,
    };
  }

  get accessToken(): string | null {
    return this.token;
  }

  get signedIn(): boolean {
    return this.token !== null;
  }

  /** When the token expires (ms since the epoch); 0 without one. */
  get expiry(): number {
    return this.expiresAt;
  }

  subscribe(fn: SessionListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Delay before the scheduled renewal of a token valid for `expiresIn` seconds. */
  renewDelay(expiresIn: number): number {
    const life = expiresIn * 1000;
    // a minute before expiry; for short lifetimes, when a fifth of it is left
    return Math.max(1_000, life - Math.min(this.deps.margin, life * 0.2));
  }

  set(tokens: Tokens, reason: "set" | "refreshed" = "set"): void {
    this.token = tokens.accessToken;
    this.expiresAt = this.deps.now() + tokens.expiresIn * 1000;
    this.schedule(this.renewDelay(tokens.expiresIn));
    this.emit(reason);
  }

  clear(reason: "cleared" | "expired" = "cleared"): void {
    const had = this.token !== null;
    this.token = null;
    this.expiresAt = 0;
    this.cancelTimer();
    if (had || reason === "expired") this.emit(reason);
  }

  /** A token that stays valid for at least a few seconds, renewing first when needed. */
  async valid(): Promise<string | null> {
    if (this.token !== null && this.deps.now() < this.expiresAt - 5_000) return this.token;
    if (this.token === null && this.inflight === null) return null;
    try {
      return await this.refresh();
    } catch {
      return null;
    }
  }

  /** Renews the pair now (shared by concurrent callers). A 401 ends the session. */
  refresh(): Promise<string> {
    if (this.inflight) return this.inflight;
    const run = async (): Promise<string> => {
      try {
        const tokens = await (this.deps.lock ? this.deps.lock(this.deps.refresh) : this.deps.refresh());
        this.set(tokens, "refreshed");
        return tokens.accessToken;
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          this.clear("expired");
        } else if (this.token !== null) {
          // a network failure: keep the token while it lasts and try again soon
          this.schedule(this.deps.retryDelay);
        }
        throw err;
      } finally {
        this.inflight = null;
      }
    };
    this.inflight = run();
    return this.inflight;
  }

  private schedule(ms: number): void {
    this.cancelTimer();
    this.timer = this.deps.setTimer(() => {
      this.timer = null;
      this.refresh().catch(() => undefined);
    }, ms);
  }

  private cancelTimer(): void {
    if (this.timer !== null) {
      this.deps.clearTimer(this.timer);
      this.timer = null;
    }
  }

  private emit(reason: "set" | "refreshed" | "cleared" | "expired"): void {
    for (const fn of this.listeners) fn(this.token, reason);
  }
}

/** navigator.locks when the browser has it (every current one does on a secure origin). */
export function browserLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return fn();
  return locks.request("collabry-refresh", fn) as Promise<T>;
}
