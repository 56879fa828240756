import { describe, expect, it } from "vitest";
import { attachmentName, tokenFrom } from "../src/api/account";
import { ApiError, describeError, sentence } from "../src/api/errors";

describe("attachmentName", () => {
  it("reads the quoted, bare and RFC 5987 forms of Content-Disposition", () => {
    expect(attachmentName('attachment; filename="collabry-export-2025-03-01.zip"', "x.zip")).toBe("collabry-export-2025-03-01.zip");
    expect(attachmentName("attachment; filename=data.zip", "x.zip")).toBe("data.zip");
    expect(attachmentName(`attachment; filename="plain.zip"; filename*=UTF-8''donn%C3%A9es.zip`, "x.zip")).toBe("données.zip");
    expect(attachmentName('attachment; filename="a \\"quoted\\" name.zip"', "x.zip")).toBe('a "quoted" name.zip');
  });

  it("falls back without a usable name and never keeps a path", () => {
    expect(attachmentName(null, "collabry-export.zip")).toBe("collabry-export.zip");
    expect(attachmentName("attachment", "collabry-export.zip")).toBe("collabry-export.zip");
    expect(attachmentName('attachment; filename=""', "fallback.zip")).toBe("fallback.zip");
    expect(attachmentName('attachment; filename="../../etc/passwd"', "f.zip")).toBe("passwd");
    expect(attachmentName('attachment; filename="C:\\\\temp\\\\x.zip"', "f.zip")).toBe("x.zip");
    expect(attachmentName('attachment; filename=".hidden"', "f.zip")).toBe("hidden");
    expect(attachmentName("attachment; filename*=UTF-8''%E0%A4%A", "f.zip")).toBe("f.zip");
  });
});

describe("tokenFrom", () => {
  it("takes the token of an emailed link's query string", () => {
    expect(tokenFrom("?token=abc_DEF-123")).toBe("abc_DEF-123");
    expect(tokenFrom("?x=1&token=%20t0ken%20")).toBe("t0ken");
    expect(tokenFrom("?token=")).toBeNull();
    expect(tokenFrom("")).toBeNull();
  });
});

describe("account errors", () => {
  it("turns server messages into sentences", () => {
    expect(sentence("the current password is wrong")).toBe("The current password is wrong.");
    expect(sentence("Done!")).toBe("Done!");
    expect(sentence("if an account has this email, a reset link is on its way; it works once within 30 minutes")).toBe(
      "If an account has this email, a reset link is on its way; it works once within 30 minutes.",
    );
    expect(sentence("")).toBe("");
  });

  it("names the account screens' errors", () => {
    expect(describeError(new ApiError(403, "wrong_password", "the current password is wrong"))).toBe("The current password is wrong.");
    expect(describeError(new ApiError(429, "export_limited", "too many requests", 1800))).toBe(
      "You can download your data a few times an hour only. Try again in 30 minutes.",
    );
    expect(describeError(new ApiError(503, "email_unavailable", "this server cannot send email"))).toMatch(/cannot send email/);
    expect(describeError(new ApiError(400, "invalid_token", "unknown"))).toBe("This link is unknown, already used or expired. Ask for a new one.");
    expect(describeError(new ApiError(403, "email_unverified", "confirm"))).toMatch(/^Confirm your email address first/);
  });
});
