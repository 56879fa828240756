/** The person's own account: profile, password, data export, deletion, recovery by email. */

import { api, request } from "./client";
import { ApiError } from "./errors";
import type { User } from "./types";

/** For these requests a 403 `invalid_credentials` is about the password just typed, not a sign-in. */
function aboutPassword(err: unknown): unknown {
  if (err instanceof ApiError && err.code === "invalid_credentials")
    return new ApiError(err.status, "wrong_password", err.message, err.retryAfter, err.details);
  return err;
}

export async function updateName(name: string): Promise<User> {
  return (await api<{ user: User }>("/api/auth/me", { method: "PATCH", json: { name } })).user;
}

export async function changePassword(currentPassword: string, password: string): Promise<User> {
  try {
    return (await api<{ user: User }>("/api/auth/me", { method: "PATCH", json: { currentPassword, password } })).user;
  } catch (err) {
    throw aboutPassword(err);
  }
}

/** `DELETE /api/account`: "deleted", or "erasing" when the server finishes it in the background. */
export async function deleteAccount(password: string): Promise<"deleted" | "erasing"> {
  try {
    return (await api<{ status: "deleted" | "erasing" }>("/api/account", { method: "DELETE", json: { password } })).status;
  } catch (err) {
    throw aboutPassword(err);
  }
}

/** The file name of a `Content-Disposition: attachment` header (RFC 6266), or `fallback`. */
export function attachmentName(header: string | null, fallback: string): string {
  if (!header) return fallback;
  let name: string | null = null;
  const extended = /filename\*\s*=\s*([^;]+)/i.exec(header);
  if (extended) {
    const m = /^\s*UTF-8'[^']*'(.+?)\s*$/i.exec(extended[1]);
    if (m) {
      try {
        name = decodeURIComponent(m[1]);
      } catch {
        name = null;
      }
    }
  }
  if (name === null) {
    const plain = /(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header);
    if (plain) name = plain[1] !== undefined ? plain[1].replace(/\\(.)/g, "$1") : plain[2];
  }
  // never a path: only the last segment, and nothing hidden
  name = (name ?? "").split(/[/\\]/).pop()!.replace(/^\.+/, "").trim();
  return name || fallback;
}

/** Saves a blob as a download through a temporary blob URL. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // the download has started from the URL by then; a later revoke frees the memory
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** `GET /api/account/export` with the bearer token, saved as a file; resolves with its name. */
export async function downloadExport(): Promise<string> {
  let resp: Response;
  try {
    resp = await request("/api/account/export", { headers: { Accept: "application/zip, application/json" } });
  } catch (err) {
    if (err instanceof ApiError && err.status === 429)
      throw new ApiError(429, "export_limited", err.message, err.retryAfter, err.details);
    throw err;
  }
  const name = attachmentName(resp.headers.get("Content-Disposition"), "collabry-export.zip");
  saveBlob(await resp.blob(), name);
  return name;
}

interface Queued {
  status: string;
  message: string;
}

export async function forgotPassword(email: string): Promise<string> {
  return (await api<Queued>("/api/auth/password/forgot", { json: { email }, auth: false })).message;
}

export async function resetPassword(token: string, password: string): Promise<void> {
  await api("/api/auth/password/reset", { json: { token, password }, auth: false });
}

export async function verifyEmail(token: string): Promise<User> {
  return (await api<{ user: User }>("/api/auth/email/verify", { json: { token }, auth: false })).user;
}

export async function resendVerification(email: string): Promise<string> {
  return (await api<Queued>("/api/auth/email/resend", { json: { email }, auth: false })).message;
}

/** The `token` of an emailed link's query string (`?token=...`), or null. */
export function tokenFrom(search: string): string | null {
  const token = new URLSearchParams(search).get("token")?.trim();
  return token ? token : null;
}
