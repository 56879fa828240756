import { useEffect, useRef, useState } from "preact/hooks";
import { api, session } from "../api/client";
import { describeError } from "../api/errors";
import { ChatStream, type Citation, newStreamState, pendingAnswer, type StreamState } from "../api/sse";
import type { ChatMessage, ChatSession } from "../api/types";
import { ErrorText, formatDate, useLoad } from "./common";

interface Shown {
  key: string;
  role: "user" | "assistant";
  content: string;
  sources?: Pick<Citation, "sourceId" | "title">[];
  note?: string;
}

function Citations(props: { sources: (Pick<Citation, "sourceId" | "title"> & { text?: string })[] | undefined }) {
  if (!props.sources || props.sources.length === 0) return null;
  return (
    <div class="citations">
      <h3 class="small">Sources</h3>
      <ol>
        {props.sources.map((s, i) => (
          <li key={`${s.sourceId}-${i}`} data-testid="citation" title={s.text ? s.text.slice(0, 300) : undefined}>
            <span class="cite-n">[{i + 1}]</span> {s.title}
          </li>
        ))}
      </ol>
    </div>
  );
}

function Message(props: { m: Shown }) {
  const { m } = props;
  return (
    <li class={`msg msg-${m.role}`}>
      <div class="msg-role">{m.role === "user" ? "You" : "Tutor"}</div>
      <div class="msg-text">{m.content}</div>
      {m.note && <div class="muted small">{m.note}</div>}
      <Citations sources={m.sources} />
    </li>
  );
}

const streamDeps = {
  fetch: (input: RequestInfo | URL, init?: RequestInit) => fetch(input, init),
  token: () => session.valid(),
  refresh: () => session.refresh(),
};

export function Chat(props: { notebookId: string }) {
  const sessions = useLoad(
    () =>
      api<{ sessions: ChatSession[] }>("/api/ai/sessions").then((r) =>
        r.sessions.filter((s) => s.notebookId === props.notebookId),
      ),
    [props.notebookId],
  );
  const [sessionId, setSessionId] = useState<string | null>(null);
  const [messages, setMessages] = useState<Shown[]>([]);
  const [live, setLive] = useState<StreamState | null>(null);
  const [question, setQuestion] = useState("");
  const [error, setError] = useState<string | null>(null);
  const stream = useRef<ChatStream | null>(null);
  const endRef = useRef<HTMLDivElement>(null);

  const follow = (s: ChatStream, run: Promise<StreamState>) => {
    stream.current = s;
    run
      .then((final) => {
        if (s.closed) return;
        finish(final);
      })
      .catch((err) => {
        if (s.closed) return;
        setError(describeError(err));
        finish(s.state);
      });
  };

  const finish = (final: StreamState) => {
    pendingAnswer.clear();
    stream.current = null;
    setLive(null);
    const note =
      final.finishReason === "cancelled"
        ? "Stopped."
        : final.status === "error" && final.error
          ? `The answer failed: ${final.error.message}`
          : undefined;
    setMessages((list) => [
      ...list,
      { key: `q-${final.messageId ?? Math.random()}`, role: "user", content: final.question },
      {
        key: `a-${final.messageId ?? Math.random()}`,
        role: "assistant",
        content: final.text,
        sources: final.sources,
        note,
      },
    ]);
    if (final.sessionId) setSessionId(final.sessionId);
    void sessions.reload();
  };

  const onUpdate = (state: StreamState) => {
    pendingAnswer.save(state);
    setLive(state);
  };

  // An answer that was streaming when the page was reloaded: resume it from its last event.
  useEffect(() => {
    const saved = pendingAnswer.load();
    if (saved && saved.notebookId === props.notebookId && saved.streamId) {
      setSessionId(saved.sessionId);
      if (saved.sessionId) void loadMessages(saved.sessionId, saved.messageId);
      const s = new ChatStream(saved, onUpdate, streamDeps);
      setLive(saved);
      follow(s, s.resume());
    }
    return () => stream.current?.close(); // leaving the page is not cancelling
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.notebookId]);

  useEffect(() => {
    endRef.current?.scrollIntoView({ block: "nearest" });
  }, [messages.length, live?.text.length]);

  const loadMessages = async (id: string, exceptMessageId?: string | null) => {
    try {
      const r = await api<{ messages: ChatMessage[] }>(`/api/ai/sessions/${id}/messages`);
      // without the answer that is still streaming (it is shown live)
      const done = r.messages.filter((m) => !exceptMessageId || m.id !== exceptMessageId);
      if (exceptMessageId && done.length && done[done.length - 1].role === "user") done.pop();
      setMessages(done.map((m) => ({ key: m.id, role: m.role, content: m.content, sources: m.sources })));
    } catch (err) {
      setError(describeError(err));
    }
  };

  const openSession = (id: string | null) => {
    if (live) return;
    setError(null);
    setSessionId(id);
    setMessages([]);
    if (id) void loadMessages(id);
  };

  const ask = (e: Event) => {
    e.preventDefault();
    const text = question.trim();
    if (!text || live) return;
    setError(null);
    setQuestion("");
    const state = newStreamState(text, props.notebookId);
    const s = new ChatStream(state, onUpdate, streamDeps);
    setLive(state);
    follow(
      s,
      s.start({ message: text, notebookId: props.notebookId, ...(sessionId ? { sessionId } : {}) }),
    );
  };

  const cancel = async () => {
    const id = live?.streamId;
    if (!id) return;
    try {
      await api(`/api/ai/streams/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    } catch (err) {
      setError(describeError(err));
    }
  };

  const streaming = live !== null;
  return (
    <div class="chat">
      <aside class="card chat-sessions" aria-label="Chat history">
        <div class="card-head">
          <h2>History</h2>
          <button type="button" onClick={() => openSession(null)} disabled={streaming}>
            New chat
          </button>
        </div>
        {sessions.data && sessions.data.length === 0 && <p class="muted small">No conversations yet.</p>}
        <ul class="list">
          {sessions.data?.map((s) => (
            <li key={s.id}>
              <button
                type="button"
                class="link"
                aria-current={s.id === sessionId ? "true" : undefined}
                onClick={() => openSession(s.id)}
                disabled={streaming}
              >
                {s.title || "Untitled"}
              </button>
              <div class="muted small">{formatDate(s.updatedAt)}</div>
            </li>
          ))}
        </ul>
      </aside>
      <section class="card chat-main" aria-label="Conversation">
        <h2 class="sr-only">Conversation</h2>
        {messages.length === 0 && !live && (
          <p class="muted">Ask anything about this notebook's sources. Answers cite the passages they use.</p>
        )}
        <ol class="messages">
          {messages.map((m) => (
            <Message key={m.key} m={m} />
          ))}
          {live && (
            <>
              <li class="msg msg-user">
                <div class="msg-role">You</div>
                <div class="msg-text">{live.question}</div>
              </li>
              <li class="msg msg-assistant" aria-live="polite" aria-busy={!("done" === live.status)} data-testid="live-answer">
                <div class="msg-role">Tutor</div>
                <div class="msg-text" data-testid="answer-text">
                  {live.text}
                  <span class="cursor" aria-hidden="true" />
                </div>
                <div class="muted small" role="status">
                  {live.status === "connecting" && "Thinking…"}
                  {live.status === "reconnecting" && "Connection lost, resuming…"}
                </div>
                <Citations sources={live.sources} />
              </li>
            </>
          )}
        </ol>
        <div ref={endRef} />
        <ErrorText error={error} />
        <form class="ask" onSubmit={ask}>
          <label for="question" class="sr-only">
            Your question
          </label>
          <textarea
            id="question"
            rows={2}
            placeholder="Ask a question about your sources"
            value={question}
            onInput={(e) => setQuestion((e.currentTarget as HTMLTextAreaElement).value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) {
                e.preventDefault();
                (e.currentTarget as HTMLTextAreaElement).form?.requestSubmit();
              }
            }}
          />
          {streaming ? (
            <button type="button" class="danger" onClick={() => void cancel()} disabled={!live?.streamId}>
              Stop
            </button>
          ) : (
            <button type="submit" class="primary" disabled={!question.trim()}>
              Ask
            </button>
          )}
        </form>
      </section>
    </div>
  );
}
