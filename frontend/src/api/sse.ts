/**
 * Server-Sent Events over fetch, and AI answers that survive dropped connections and reloads.
 *
 * EventSource cannot send a POST body or an Authorization header, so the stream is read with
 * fetch and parsed here exactly as the HTML standard's EventSource parser does (fields, multi-line
 * data, comments, `id`, `retry`, CR/LF/CRLF line ends split across chunks). A `ChatStream`
 * follows one answer: it reconnects with `Last-Event-ID` after a network drop or a replica's
 * `retry:` hand-off, and its state (last event id, text so far) can be saved and resumed after a
 * reload.
 */

import { ApiError, errorFrom } from "./errors";

export interface SSEEvent {
  id: string | null;
  event: string;
  data: string;
}

export class SSEParser {
  private buffer = "";
  private data: string[] = [];
  private hasData = false;
  private eventType = "";
  private pendingCR = false;
  /** The last `id` field seen (persists across events, like EventSource's lastEventId). */
  lastEventId = "";
  /** The last valid `retry` field, in ms. */
  retry: number | null = null;
  comments = 0;

  feed(chunk: string): SSEEvent[] {
    const out: SSEEvent[] = [];
    let text = chunk;
    if (this.pendingCR) {
      // a CR at the end of the previous chunk already ended its line; skip the LF of a CRLF
      if (text.startsWith("\n")) text = text.slice(1);
      this.pendingCR = false;
    }
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const ch = this.buffer.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      const line = this.buffer.slice(start, i);
      if (ch === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCR = true;
        }
      }
      start = i + 1;
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string): SSEEvent | null {
    if (line === "") {
      if (!this.hasData) {
        this.eventType = "";
        return null;
      }
      const ev = { id: this.lastEventId || null, event: this.eventType || "message", data: this.data.join("\n") };
      this.data = [];
      this.hasData = false;
      this.eventType = "";
      return ev;
    }
    if (line.startsWith(":")) {
      this.comments++;
      return null;
    }
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (name) {
      case "data":
        this.data.push(value);
        this.hasData = true;
        break;
      case "event":
        this.eventType = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
    return null;
  }
}

export interface Citation {
  sourceId: string;
  title: string;
  chunkId: string;
  score: number;
  text: string;
}

export type StreamStatus = "connecting" | "streaming" | "reconnecting" | "done" | "error";

/** Everything known about one answer; plain data, so it can be saved in sessionStorage. */
export interface StreamState {
  streamId: string | null;
  sessionId: string | null;
  messageId: string | null;
  notebookId: string | null;
  question: string;
  lastEventId: number;
  text: string;
  sources: Citation[];
  status: StreamStatus;
  finishReason: string | null;
  error: { code: string; message: string } | null;
}

export function newStreamState(question: string, notebookId: string | null): StreamState {
  return {
    streamId: null,
    sessionId: null,
    messageId: null,
    notebookId,
    question,
    lastEventId: 0,
    text: "",
    sources: [],
    status: "connecting",
    finishReason: null,
    error: null,
  };
}

/** Applies one event to the state (pure). Events at or below `lastEventId` are repeats and ignored. */
export function applyEvent(state: StreamState, ev: SSEEvent): StreamState {
  const id = ev.id !== null && /^\d+$/.test(ev.id) ? Number(ev.id) : null;
  if (id !== null && id <= state.lastEventId) return state;
  let data: Record<string, unknown> = {};
  try {
    data = JSON.parse(ev.data) as Record<string, unknown>;
  } catch {
    return id !== null ? { ...state, lastEventId: id } : state;
  }
  const next: StreamState = { ...state, lastEventId: id ?? state.lastEventId };
  switch (ev.event) {
    case "meta":
      next.streamId = String(data.streamId ?? next.streamId ?? "");
      next.sessionId = (data.sessionId as string | undefined) ?? next.sessionId;
      next.messageId = (data.messageId as string | undefined) ?? next.messageId;
      next.status = "streaming";
      break;
    case "sources":
      next.sources = Array.isArray(data.sources) ? (data.sources as Citation[]) : [];
      break;
    case "token":
      next.text = state.text + String(data.text ?? "");
      next.status = "streaming";
      break;
    case "done":
      next.status = "done";
      next.finishReason = String(data.finishReason ?? "stop");
      break;
    case "error":
      next.status = "error";
      next.error = { code: String(data.code ?? "error"), message: String(data.message ?? "the answer failed") };
      break;
  }
  return next;
}

export function finished(state: StreamState): boolean {
  return state.status === "done" || state.status === "error";
}

export interface ChatStreamDeps {
  fetch: typeof fetch;
  /** A valid access token (renewed when needed), or null when signed out. */
  token: () => Promise<string | null>;
  /** Forces a renewal after a 401. */
  refresh: () => Promise<string>;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Consecutive reconnects without progress before giving up. */
  maxAttempts?: number;
}

export interface ChatRequest {
  message: string;
  notebookId?: string;
  sessionId?: string;
  sourceIds?: string[];
}

const abortable = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(new DOMException("aborted", "AbortError"));
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      reject(new DOMException("aborted", "AbortError"));
    });
  });

/**
 * Follows one answer from its first request (`start`) or from a saved state (`resume`) until
 * `done`/`error`, reconnecting with `Last-Event-ID`. `onUpdate` gets every new state (save it
 * there to survive a reload). `close()` stops reading without cancelling the answer;
 * cancelling is a separate request (`POST /api/ai/streams/{id}/cancel`).
 */
export class ChatStream {
  state: StreamState;
  private readonly controller = new AbortController();
  private readonly deps: Required<ChatStreamDeps>;

  constructor(
    state: StreamState,
    private readonly onUpdate: (state: StreamState) => void,
    deps: ChatStreamDeps,
  ) {
    this.state = state;
    this.deps = { sleep: abortable, maxAttempts: 8, ...deps };
  }

  close(): void {
    this.controller.abort();
  }

  get closed(): boolean {
    return this.controller.signal.aborted;
  }

  start(body: ChatRequest): Promise<StreamState> {
    return this.run(() => this.open("POST", "/api/ai/chat", body));
  }

  resume(): Promise<StreamState> {
    return this.run(null);
  }

  private update(state: StreamState): void {
    this.state = state;
    if (!this.closed) this.onUpdate(state);
  }

  private async open(method: "GET" | "POST", path: string, body?: unknown, retried = false): Promise<Response> {
    const token = await this.deps.token();
    if (token === null) throw new ApiError(401, "unauthorized", "signed out");
    const headers: Record<string, string> = { Accept: "text/event-stream", Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method === "GET" && this.state.lastEventId > 0) headers["Last-Event-ID"] = String(this.state.lastEventId);
    const resp = await this.deps.fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal: this.controller.signal,
    });
    if (resp.status === 401 && !retried) {
      await this.deps.refresh();
      return this.open(method, path, body, true);
    }
    if (!resp.ok) throw await errorFrom(resp);
    return resp;
  }

  private async run(first: (() => Promise<Response>) | null): Promise<StreamState> {
    let failures = 0;
    let opener = first;
    let parser = new SSEParser();
    while (!this.closed) {
      const before = this.state.lastEventId;
      try {
        if (opener === null) {
          if (!this.state.streamId) throw new ApiError(0, "stream_lost", "the answer's stream is unknown");
          this.update({ ...this.state, status: this.state.lastEventId > 0 ? "reconnecting" : "connecting" });
          opener = () => this.open("GET", `/api/ai/streams/${encodeURIComponent(this.state.streamId!)}`);
        }
        const resp = await opener();
        opener = null; // every later connection resumes
        parser = new SSEParser();
        await this.read(resp, parser);
        if (finished(this.state)) return this.state;
      } catch (err) {
        if (this.closed) break;
        opener = null;
        // 4xx answers (quota, not found, signed out) are final; network errors and 5xx are retried
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          const code = err.status === 404 ? "stream_expired" : err.code;
          this.update({ ...this.state, status: "error", error: { code, message: err.message } });
          throw err;
        }
        if (!this.state.streamId) {
          // nothing to resume: the request itself failed
          this.update({ ...this.state, status: "error", error: { code: "network", message: String(err) } });
          throw err;
        }
      }
      failures = this.state.lastEventId > before ? 0 : failures + 1;
      if (failures >= this.deps.maxAttempts) {
        const error = { code: "network", message: "the connection keeps failing" };
        this.update({ ...this.state, status: "error", error });
        return this.state;
      }
      this.update({ ...this.state, status: "reconnecting" });
      const wait = failures === 0 ? (parser.retry ?? 500) : Math.min(8_000, 500 * 2 ** failures);
      try {
        await this.deps.sleep(wait, this.controller.signal);
      } catch {
        break;
      }
    }
    return this.state;
  }

  private async read(resp: Response, parser: SSEParser): Promise<void> {
    if (!resp.body) return;
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of parser.feed(decoder.decode(value, { stream: true }))) {
          const next = applyEvent(this.state, ev);
          if (next !== this.state) this.update(next);
          if (finished(this.state)) return;
        }
      }
    } finally {
      reader.cancel().catch(() => undefined);
    }
  }
}

const STORAGE_KEY = "collabry.answer";

/** The answer in progress, saved per tab so a reload resumes it. */
export const pendingAnswer = {
  save(state: StreamState): void {
    try {
      if (finished(state) || !state.streamId) sessionStorage.removeItem(STORAGE_KEY);
      else sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state));
    } catch {
      /* storage full or disabled: resuming after a reload is then not possible */
    }
  },
  load(): StreamState | null {
    try {
      const raw = sessionStorage.getItem(STORAGE_KEY);
      return raw ? (JSON.parse(raw) as StreamState) : null;
    } catch {
      return null;
    }
  },
  clear(): void {
    try {
      sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      /* ignore */
    }
  },
};
