import { describe, expect, it } from "vitest";
import { applyEvent, ChatStream, newStreamState, SSEParser, type StreamState } from "../src/api/sse";

describe("SSEParser", () => {
  it("parses events, ids, comments and retry", () => {
    const p = new SSEParser();
    const out = p.feed(': ping\n\nid: 1\nevent: meta\ndata: {"streamId":"s"}\n\nretry: 1000\n\n');
    expect(out).toEqual([{ id: "1", event: "meta", data: '{"streamId":"s"}' }]);
    expect(p.comments).toBe(1);
    expect(p.retry).toBe(1000);
    expect(p.lastEventId).toBe("1");
  });

  it("handles chunks split anywhere, CRLF and CR line ends, multi-line data", () => {
    const text = 'id: 7\r\nevent: token\r\ndata: {"text":\r\ndata: "a"}\r\n\r\nid: 8\revent: done\rdata: {}\r\r';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SSEParser();
      const events = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
      expect(events, `cut at ${cut}`).toEqual([
        { id: "7", event: "token", data: '{"text":\n"a"}' },
        { id: "8", event: "done", data: "{}" },
      ]);
    }
  });

  it("defaults the event type to message and ignores events without data", () => {
    const p = new SSEParser();
    expect(p.feed("event: x\n\ndata:plain\n\n")).toEqual([{ id: null, event: "message", data: "plain" }]);
  });
});

describe("applyEvent", () => {
  it("builds the answer and ignores repeated ids", () => {
    let s = newStreamState("q", "nb");
    s = applyEvent(s, { id: "1", event: "meta", data: '{"streamId":"S","sessionId":"X","messageId":"M"}' });
    s = applyEvent(s, { id: "2", event: "sources", data: '{"sources":[{"sourceId":"a","title":"Cells"}]}' });
    s = applyEvent(s, { id: "3", event: "token", data: '{"text":"Hi"}' });
    s = applyEvent(s, { id: "3", event: "token", data: '{"text":"Hi"}' });
    s = applyEvent(s, { id: "4", event: "done", data: '{"finishReason":"stop"}' });
    expect(s).toMatchObject({ streamId: "S", sessionId: "X", text: "Hi", status: "done", lastEventId: 4 });
    expect(s.sources[0].title).toBe("Cells");
  });
});

/** A fetch stand-in: each call answers with the next scripted body (or throws for "drop"). */
function scripted(
  responses: (string[] | { status: number; body?: string } | "network")[],
  seen: { method: string; url: string; lastEventId: string | null }[],
) {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    seen.push({ method: init?.method ?? "GET", url: String(input), lastEventId: headers.get("Last-Event-ID") });
    const next = responses.shift();
    if (next === undefined || next === "network") throw new TypeError("network error");
    if (!Array.isArray(next)) return new Response(next.body ?? "{}", { status: next.status });
    const chunks = next;
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const c = chunks[i++];
        if (c === undefined) controller.close();
        else if (c === "<drop>") controller.error(new TypeError("connection reset"));
        else controller.enqueue(new TextEncoder().encode(c));
      },
    });
    return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  };
}

const ev = (id: number, event: string, data: unknown) => `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const deps = (fetch: typeof globalThis.fetch) => ({
  fetch,
  token: async () => "tok",
  refresh: async () => "tok2",
  sleep: async () => undefined,
});

describe("ChatStream", () => {
  it("resumes after a dropped connection from the last event, without repeating text", async () => {
    const seen: { method: string; url: string; lastEventId: string | null }[] = [];
    const fetch = scripted(
      [
        [ev(1, "meta", { streamId: "S1", sessionId: "X", messageId: "M" }), ev(2, "token", { text: "Hel" }), "<drop>"],
        [ev(3, "token", { text: "lo" }), ev(4, "done", { finishReason: "stop" })],
      ],
      seen,
    );
    const updates: StreamState[] = [];
    const stream = new ChatStream(newStreamState("q", "nb"), (s) => updates.push(s), deps(fetch));
    const final = await stream.start({ message: "q", notebookId: "nb" });
    expect(final.text).toBe("Hello");
    expect(final.status).toBe("done");
    expect(seen.map((s) => [s.method, s.url, s.lastEventId])).toEqual([
      ["POST", "/api/ai/chat", null],
      ["GET", "/api/ai/streams/S1", "2"],
    ]);
    expect(updates.some((u) => u.status === "reconnecting")).toBe(true);
  });

  it("follows a replica's retry hand-off (the stream ends without done)", async () => {
    const seen: { method: string; url: string; lastEventId: string | null }[] = [];
    const fetch = scripted(
      [
        [ev(1, "meta", { streamId: "S2" }), ev(2, "token", { text: "a" }), "retry: 1000\n\n"],
        "network",
        [ev(3, "token", { text: "b" }), ev(4, "done", {})],
      ],
      seen,
    );
    const final = await new ChatStream(newStreamState("q", null), () => undefined, deps(fetch)).start({ message: "q" });
    expect(final.text).toBe("ab");
    expect(seen.slice(1).map((s) => s.lastEventId)).toEqual(["2", "2"]);
  });

  it("resumes a saved state (a reload) with Last-Event-ID", async () => {
    const seen: { method: string; url: string; lastEventId: string | null }[] = [];
    const fetch = scripted([[ev(5, "token", { text: " world" }), ev(6, "done", {})]], seen);
    const saved = { ...newStreamState("q", "nb"), streamId: "S3", lastEventId: 4, text: "Hello", status: "streaming" as const };
    const final = await new ChatStream(saved, () => undefined, deps(fetch)).resume();
    expect(final.text).toBe("Hello world");
    expect(seen).toEqual([{ method: "GET", url: "/api/ai/streams/S3", lastEventId: "4" }]);
  });

  it("reports an expired stream (404) as final", async () => {
    const fetch = scripted([{ status: 404, body: '{"error":{"code":"not_found","message":"stream not found"}}' }], []);
    const saved = { ...newStreamState("q", "nb"), streamId: "gone", lastEventId: 3 };
    const stream = new ChatStream(saved, () => undefined, deps(fetch));
    await expect(stream.resume()).rejects.toThrow("stream not found");
    expect(stream.state.error?.code).toBe("stream_expired");
  });

  it("renews the token once after a 401", async () => {
    const seen: { method: string; url: string; lastEventId: string | null }[] = [];
    const fetch = scripted([{ status: 401 }, [ev(1, "meta", { streamId: "S" }), ev(2, "done", {})]], seen);
    let refreshed = 0;
    const final = await new ChatStream(newStreamState("q", null), () => undefined, {
      ...deps(fetch),
      refresh: async () => {
        refreshed++;
        return "new";
      },
    }).start({ message: "q" });
    expect(final.status).toBe("done");
    expect(refreshed).toBe(1);
  });

  it("gives up after repeated failures without progress", async () => {
    const fetch = scripted([[ev(1, "meta", { streamId: "S" }), "<drop>"], "network", "network", "network"], []);
    const final = await new ChatStream(newStreamState("q", null), () => undefined, { ...deps(fetch), maxAttempts: 3 }).start({
      message: "q",
    });
    expect(final.status).toBe("error");
  });
});
