import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/errors";
import { Session, type Tokens } from "../src/api/session";

function clock() {
  let now = 1_000_000;
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let next = 1;
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      const id = next++;
      timers.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimer: (id: unknown) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    /** Moves time forward, firing due timers in order. */
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const t = timers[0];
        if (!t || t.at > end) break;
        timers.shift();
        now = t.at;
        t.fn();
      }
      now = end;
    },
    pending: () => timers.length,
  };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("Session", () => {
  it("renews a minute before expiry, and at 80 % of short lifetimes", () => {
    const s = new Session({ refresh: async () => ({ accessToken: "x", expiresIn: 900 }) });
    expect(s.renewDelay(900)).toBe(840_000);
    expect(s.renewDelay(60)).toBe(48_000);
    expect(s.renewDelay(1)).toBe(1_000);
  });

  it("refreshes on its own before the token expires", async () => {
    const c = clock();
    let n = 0;
    const s = new Session({ ...c, refresh: async () => ({ accessToken: `t${++n}`, expiresIn: 900 }) });
    s.set({ accessToken: "t0", expiresIn: 900 });
    c.advance(839_000);
    expect(n).toBe(0);
    c.advance(1_000);
    await flush();
    expect(n).toBe(1);
    expect(s.accessToken).toBe("t1");
    expect(c.pending()).toBe(1); // the next renewal is scheduled
  });

  it("shares one renewal between concurrent callers (a rotated refresh token is never reused)", async () => {
    let calls = 0;
    let release!: (t: Tokens) => void;
    const s = new Session({
      refresh: () => {
        calls++;
        return new Promise<Tokens>((r) => (release = r));
      },
    });
    s.set({ accessToken: "old", expiresIn: 900 });
    const a = s.refresh();
    const b = s.refresh();
    release({ accessToken: "new", expiresIn: 900 });
    expect(await a).toBe("new");
    expect(await b).toBe("new");
    expect(calls).toBe(1);
  });

  it("serialises renewals through the cross-tab lock", async () => {
    const order: string[] = [];
    let held = Promise.resolve();
    const lock = <T,>(fn: () => Promise<T>) => {
      const run = held.then(() => {
        order.push("lock");
        return fn();
      });
      held = run.then(() => undefined, () => undefined);
      return run;
    };
    const s = new Session({ lock, refresh: async () => ({ accessToken: "n", expiresIn: 900 }) });
    s.set({ accessToken: "o", expiresIn: 900 });
    await s.refresh();
    expect(order).toEqual(["lock"]);
  });

  it("valid() renews a token that is about to expire first", async () => {
    let now = 1_000_000;
    const s = new Session({ now: () => now, refresh: async () => ({ accessToken: "fresh", expiresIn: 900 }) });
    s.set({ accessToken: "stale", expiresIn: 10 });
    expect(await s.valid()).toBe("stale");
    now += 6_000; // within 5 s of expiry counts as expired
    expect(await s.valid()).toBe("fresh");
  });

  it("ends the session when the refresh token is refused", async () => {
    const reasons: string[] = [];
    const s = new Session({
      refresh: async () => {
        throw new ApiError(401, "token_reused", "reused");
      },
    });
    s.subscribe((_t, r) => reasons.push(r));
    s.set({ accessToken: "a", expiresIn: 900 });
    await expect(s.refresh()).rejects.toThrow("reused");
    expect(s.accessToken).toBeNull();
    expect(reasons).toEqual(["set", "expired"]);
  });

  it("keeps the token and retries later when the network fails", async () => {
    const c = clock();
    let fail = true;
    const s = new Session({
      ...c,
      retryDelay: 5_000,
      refresh: async () => {
        if (fail) throw new ApiError(0, "network", "offline");
        return { accessToken: "b", expiresIn: 900 };
      },
    });
    s.set({ accessToken: "a", expiresIn: 900 });
    await expect(s.refresh()).rejects.toThrow("offline");
    expect(s.accessToken).toBe("a");
    fail = false;
    c.advance(5_000);
    await flush();
    expect(s.accessToken).toBe("b");
  });
});
