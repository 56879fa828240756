/** JSON requests to the same-origin API with the session's bearer token. */

import { ApiError, errorFrom } from "./errors";
import { browserLock, Session, type Tokens } from "./session";
import type { User } from "./types";

async function refreshRequest(): Promise<Tokens> {
  let resp: Response;
  try {
    resp = await fetch("/api/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}", // the httpOnly cookie carries the refresh token
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network", "cannot reach the server");
  }
  if (!resp.ok) throw await errorFrom(resp);
  return (await resp.json()) as Tokens;
}

export const session = new Session({ refresh: refreshRequest, lock: browserLock });

// A hint (not a credential) that this browser holds a refresh cookie: without it the first screen
// shows the sign-in form at once instead of asking the server first.
const HINT = "collabry.signedIn";
function setHint(on: boolean): void {
  try {
    if (on) localStorage.setItem(HINT, "1");
    else localStorage.removeItem(HINT);
  } catch {
    /* storage disabled: every start asks the server */
  }
}
function hasHint(): boolean {
  try {
    return localStorage.getItem(HINT) === "1";
  } catch {
    return true;
  }
}
session.subscribe((token, reason) => {
  if (token === null && (reason === "expired" || reason === "cleared")) setHint(false);
});

export interface RequestOptions {
  method?: string;
  json?: unknown;
  body?: BodyInit;
  auth?: boolean;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** A request with the bearer token (renewed once after a 401); a non-2xx answer throws ApiError. */
export async function request(path: string, opts: RequestOptions = {}): Promise<Response> {
  const { method = opts.json !== undefined || opts.body !== undefined ? "POST" : "GET", auth = true } = opts;
  const send = async (token: string | null): Promise<Response> => {
    const headers: Record<string, string> = { Accept: "application/json", ...opts.headers };
    if (opts.json !== undefined) headers["Content-Type"] = "application/json";
    if (auth && token) headers.Authorization = `Bearer ${token}`;
    try {
      return await fetch(path, {
        method,
        headers,
        body: opts.json !== undefined ? JSON.stringify(opts.json) : opts.body,
        credentials: "same-origin",
        signal: opts.signal,
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") throw err;
      throw new ApiError(0, "network", "cannot reach the server");
    }
  };
  let resp = await send(auth ? await session.valid() : null);
  if (resp.status === 401 && auth && session.signedIn) {
    // the token expired meanwhile (a sleeping laptop): renew once and try again
    try {
      resp = await send(await session.refresh());
    } catch {
      /* the 401 below ends the session */
    }
  }
  if (!resp.ok) {
    const err = await errorFrom(resp);
    if (resp.status === 401 && auth) session.clear("expired");
    throw err;
  }
  return resp;
}

export async function api<T = unknown>(path: string, opts: RequestOptions = {}): Promise<T> {
  const resp = await request(path, opts);
  if (resp.status === 204) return undefined as T;
  const type = resp.headers.get("Content-Type") ?? "";
  return (type.includes("json") ? await resp.json() : await resp.text()) as T;
}

export interface LoginResult extends Tokens {
  user: User;
}

export async function login(email: string, password: string): Promise<User> {
  const result = await api<LoginResult>("/api/auth/login", { json: { email, password }, auth: false });
  session.set(result);
  setHint(true);
  return result.user;
}

export async function register(email: string, password: string, name: string): Promise<User> {
  const { user } = await api<{ user: User }>("/api/auth/register", { json: { email, password, name }, auth: false });
  return user;
}

/** On start: a refresh cookie from an earlier visit signs the person in again. */
export async function restore(): Promise<User | null> {
  if (!hasHint()) return null;
  try {
    session.set(await refreshRequest());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) setHint(false);
    return null;
  }
  try {
    return (await api<{ user: User }>("/api/auth/me")).user;
  } catch {
    return null;
  }
}

export async function logout(): Promise<void> {
  try {
    await api("/api/auth/logout", { method: "POST" });
  } finally {
    session.clear();
  }
}

/** Upload with progress (fetch has no upload progress); retried once after a token renewal. */
export function upload<T>(
  path: string,
  form: FormData,
  onProgress: (fraction: number) => void,
): { promise: Promise<T>; abort: () => void } {
  let xhr: XMLHttpRequest | null = null;
  let aborted = false;
  const attempt = (token: string | null, retry: boolean): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const req = new XMLHttpRequest();
      xhr = req;
      req.open("POST", path);
      if (token) req.setRequestHeader("Authorization", `Bearer ${token}`);
      req.setRequestHeader("Accept", "application/json");
      req.upload.onprogress = (e) => {
        if (e.lengthComputable) onProgress(e.loaded / e.total);
      };
      req.onerror = () => reject(new ApiError(0, "network", "cannot reach the server"));
      req.onabort = () => reject(new DOMException("aborted", "AbortError"));
      req.onload = () => {
        const headers = new Headers();
        for (const line of req.getAllResponseHeaders().trim().split(/[\r\n]+/)) {
          const i = line.indexOf(":");
          if (i > 0) headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
        }
        const resp = new Response(req.status === 204 ? null : req.responseText, { status: req.status, headers });
        if (req.status === 401 && retry) {
          session
            .refresh()
            .then((t) => attempt(t, false))
            .then(resolve, reject);
          return;
        }
        if (req.status < 200 || req.status >= 300) {
          errorFrom(resp).then(reject, reject);
          return;
        }
        onProgress(1);
        resp.json().then((v) => resolve(v as T), reject);
      };
      req.send(form);
    });
  const promise = session.valid().then((t) => {
    if (aborted) throw new DOMException("aborted", "AbortError");
    return attempt(t, true);
  });
  return {
    promise,
    abort: () => {
      aborted = true;
      (xhr as XMLHttpRequest | null)?.abort();
    },
  };
}
