import { describe, expect, it } from "vitest";
import { ApiError, describeError, errorFrom } from "../src/api/errors";

describe("describeError", () => {
  it("names wrong passwords, lockouts and rate limits with the wait from Retry-After", async () => {
    const locked = await errorFrom(
      new Response('{"error":{"code":"account_locked","message":"locked"}}', { status: 423, headers: { "Retry-After": "900" } }),
    );
    expect(locked).toMatchObject({ status: 423, code: "account_locked", retryAfter: 900 });
    expect(describeError(locked)).toBe("This account is locked after too many failed sign-in attempts. Try again in 15 minutes.");
    expect(describeError(new ApiError(429, "rate_limited", "slow down", 30))).toBe("Too many requests. Try again in 30 seconds.");
    expect(describeError(new ApiError(429, "rate_limited", "slow down", 1))).toBe("Too many requests. Try again in 1 second.");
    expect(describeError(new ApiError(401, "invalid_credentials", "wrong email or password"))).toBe("Wrong email or password.");
  });

  it("falls back to the server's message, and to a network sentence", async () => {
    const other = await errorFrom(new Response('{"error":{"code":"no_subscription","message":"nothing to cancel"}}', { status: 409 }));
    expect(describeError(other)).toBe("Nothing to cancel");
    const html = await errorFrom(new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    expect(html.code).toBe("http_502");
    expect(describeError(new TypeError("Failed to fetch"))).toMatch(/Cannot reach the server/);
  });
});
