import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api/client";
import type { Board, User } from "../api/types";
import { connectSocket } from "../realtime";
import { linkClick, navigate } from "../router";
import { ErrorText, formatDate, Section, Spinner, useAction, useLoad, usePageTitle } from "./common";

export function BoardsPage() {
  usePageTitle("Boards");
  const list = useLoad(() => api<{ boards: Board[] }>("/api/boards").then((r) => r.boards), []);
  const trash = useLoad(() => api<{ boards: Board[] }>("/api/boards/trash").then((r) => r.boards), []);
  const [title, setTitle] = useState("");
  const action = useAction();
  const create = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const { board } = await api<{ board: Board }>("/api/boards", { json: { title } });
      setTitle("");
      navigate(`/boards/${board.id}`);
    });
  };
  const restore = (id: string) =>
    action.run(async () => {
      await api(`/api/boards/${id}/restore`, { method: "POST" });
      await Promise.all([list.reload(), trash.reload()]);
    });
  return (
    <div class="page">
      <h1>Boards</h1>
      <Section title="New board">
        <form class="inline" onSubmit={create}>
          <label for="new-board">Title</label>
          <input id="new-board" value={title} required onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)} />
          <button class="primary" type="submit" disabled={action.busy}>
            Create board
          </button>
        </form>
        <ErrorText error={action.error} />
      </Section>
      <Section title="Your boards">
        {list.loading && !list.data && <Spinner />}
        <ErrorText error={list.error} />
        {list.data && list.data.length === 0 && <p class="muted">No boards yet.</p>}
        <ul class="list" aria-label="Boards">
          {list.data?.map((b) => (
            <li key={b.id} class="row">
              <div class="grow">
                <a href={`/boards/${b.id}`} onClick={linkClick}>
                  {b.title}
                </a>
                <div class="muted small">
                  {b.role} · created {formatDate(b.createdAt)}
                  {b.archived ? " · archived (read-only)" : ""}
                </div>
              </div>
            </li>
          ))}
        </ul>
      </Section>
      {trash.data && trash.data.length > 0 && (
        <Section title="Recycle bin">
          <ul class="list" aria-label="Deleted boards">
            {trash.data.map((b) => (
              <li key={b.id} class="row">
                <div class="grow">{b.title}</div>
                <button type="button" onClick={() => void restore(b.id)} aria-label={`Restore ${b.title}`}>
                  Restore
                </button>
              </li>
            ))}
          </ul>
        </Section>
      )}
    </div>
  );
}

type EditorModule = typeof import("../board/editor");

export function BoardPage(props: { id: string; user: User }) {
  const board = useLoad(() => api<{ board: Board }>(`/api/boards/${props.id}`).then((r) => r.board), [props.id]);
  usePageTitle(board.data?.title ?? "Board");
  const area = useRef<HTMLTextAreaElement>(null);
  const [peers, setPeers] = useState<{ id: string; name: string }[]>([]);
  const [status, setStatus] = useState<"loading" | "joining" | "live" | "offline" | "read-only">("loading");
  const [error, setError] = useState<string | null>(null);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<"editor" | "viewer">("editor");
  const [renaming, setRenaming] = useState<string | null>(null);
  const action = useAction();
  const b = board.data;

  useEffect(() => {
    if (!b || !area.current) return;
    let unbind: (() => void) | null = null;
    let cancelled = false;
    area.current.readOnly = b.role === "viewer" || Boolean(b.archived);
    import("../board/editor").then((mod: EditorModule) => {
      if (cancelled || !area.current) return;
      unbind = mod.bindBoard(connectSocket(), props.id, area.current, {
        onPeers: setPeers,
        onStatus: setStatus,
        onError: setError,
      });
    }, () => setError("The board editor failed to load. Reload the page."));
    return () => {
      cancelled = true;
      unbind?.();
    };
    // bind once per board (not on every reload of its details)
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [b?.id]);

  if (board.error) return <ErrorText error={board.error} />;
  if (!b) return <Spinner />;
  const owner = b.role === "owner";

  const share = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      await api(`/api/boards/${b.id}/members`, { json: { email, role } });
      setEmail("");
      await board.reload();
    });
  };
  const removeMember = (userId: string) =>
    action.run(async () => {
      await api(`/api/boards/${b.id}/members/${userId}`, { method: "DELETE" });
      if (userId === props.user.id) navigate("/boards");
      else await board.reload();
    });
  const rename = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      await api(`/api/boards/${b.id}`, { method: "PATCH", json: { title: renaming } });
      setRenaming(null);
      await board.reload();
    });
  };
  const remove = () =>
    action.run(async () => {
      await api(`/api/boards/${b.id}`, { method: "DELETE" });
      navigate("/boards");
    });

  const statusText = {
    loading: "Loading…",
    joining: "Connecting…",
    live: "Live",
    offline: "Offline: reconnecting…",
    "read-only": "Read only",
  }[status];

  return (
    <div class="page">
      <p class="crumbs">
        <a href="/boards" onClick={linkClick}>
          Boards
        </a>{" "}
        /
      </p>
      {renaming !== null ? (
        <form class="inline" onSubmit={rename}>
          <label for="board-title">Board title</label>
          <input id="board-title" value={renaming} required onInput={(e) => setRenaming((e.currentTarget as HTMLInputElement).value)} />
          <button class="primary" type="submit">
            Save
          </button>
          <button type="button" onClick={() => setRenaming(null)}>
            Cancel
          </button>
        </form>
      ) : (
        <div class="title-row">
          <h1>{b.title}</h1>
          {b.role !== "viewer" && (
            <button type="button" onClick={() => setRenaming(b.title)}>
              Rename
            </button>
          )}
          {owner && (
            <button type="button" class="danger" onClick={() => void remove()}>
              Delete board
            </button>
          )}
        </div>
      )}
      <ErrorText error={error ?? action.error} />
      <div class="board-grid">
        <section class="card board-editor" aria-label="Board">
          <div class="card-head">
            <h2>Notes</h2>
            <span class={`status status-${status}`} role="status" data-testid="board-status">
              {statusText}
            </span>
          </div>
          <label for="board-text" class="sr-only">
            Board notes, shared live with the board's members
          </label>
          <textarea id="board-text" ref={area} rows={16} spellcheck data-testid="board-text" placeholder="Write together…" />
        </section>
        <aside class="board-side">
          <Section title="Here now" level={2}>
            <ul class="people" aria-label="People on this board" data-testid="presence">
              {peers.map((p) => (
                <li key={p.id}>
                  <span class="dot" aria-hidden="true" /> {p.name}
                  {p.id === props.user.id ? " (you)" : ""}
                </li>
              ))}
            </ul>
          </Section>
          <Section title="Members" level={2}>
            <ul class="list" aria-label="Members">
              {b.members?.map((m) => (
                <li key={m.userId} class="row">
                  <span class="grow">
                    {m.name} <span class="muted small">({m.role})</span>
                  </span>
                  {((owner && m.role !== "owner") || (!owner && m.userId === props.user.id)) && (
                    <button type="button" onClick={() => void removeMember(m.userId)}>
                      {m.userId === props.user.id ? "Leave" : `Remove`}
                      {m.userId !== props.user.id && <span class="sr-only"> {m.name}</span>}
                    </button>
                  )}
                </li>
              ))}
            </ul>
            {owner && (
              <form class="stack" onSubmit={share}>
                <h3>Share</h3>
                <p class="muted small">Sharing again with another role changes a member's role.</p>
                <div class="field">
                  <label for="share-email">Email of an existing user</label>
                  <input id="share-email" type="email" required value={email} onInput={(e) => setEmail((e.currentTarget as HTMLInputElement).value)} />
                </div>
                <div class="field">
                  <label for="share-role">Role</label>
                  <select id="share-role" value={role} onChange={(e) => setRole((e.currentTarget as HTMLSelectElement).value as "editor" | "viewer")}>
                    <option value="editor">Editor (can write)</option>
                    <option value="viewer">Viewer (read only)</option>
                  </select>
                </div>
                <button type="submit" class="primary" disabled={action.busy}>
                  Share board
                </button>
              </form>
            )}
          </Section>
        </aside>
      </div>
    </div>
  );
}
