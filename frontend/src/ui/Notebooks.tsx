import { useState } from "preact/hooks";
import { api } from "../api/client";
import type { Notebook } from "../api/types";
import { linkClick } from "../router";
import { ErrorText, formatDate, Section, Spinner, useAction, useLoad, usePageTitle } from "./common";

export function NotebooksPage() {
  usePageTitle("Notebooks");
  const list = useLoad(() => api<{ notebooks: Notebook[] }>("/api/notebooks").then((r) => r.notebooks), []);
  const trash = useLoad(() => api<{ notebooks: Notebook[] }>("/api/notebooks/trash").then((r) => r.notebooks), []);
  const [title, setTitle] = useState("");
  const [editing, setEditing] = useState<string | null>(null);
  const [draft, setDraft] = useState("");
  const action = useAction();

  const create = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      await api("/api/notebooks", { json: { title } });
      setTitle("");
      await list.reload();
    });
  };
  const rename = (e: Event, id: string) => {
    e.preventDefault();
    void action.run(async () => {
      await api(`/api/notebooks/${id}`, { method: "PATCH", json: { title: draft } });
      setEditing(null);
      await list.reload();
    });
  };
  const remove = (id: string) =>
    action.run(async () => {
      await api(`/api/notebooks/${id}`, { method: "DELETE" });
      await Promise.all([list.reload(), trash.reload()]);
    });
  const restore = (id: string) =>
    action.run(async () => {
      await api(`/api/notebooks/${id}/restore`, { method: "POST" });
      await Promise.all([list.reload(), trash.reload()]);
    });

  return (
    <div class="page">
      <h1>Notebooks</h1>
      <Section title="New notebook">
        <form class="inline" onSubmit={create}>
          <label for="new-notebook">Title</label>
          <input
            id="new-notebook"
            value={title}
            required
            maxLength={200}
            onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)}
          />
          <button class="primary" type="submit" disabled={action.busy}>
            Create notebook
          </button>
        </form>
        <ErrorText error={action.error} />
      </Section>
      <Section title="Your notebooks">
        {list.loading && !list.data && <Spinner />}
        <ErrorText error={list.error} />
        {list.data && list.data.length === 0 && <p class="muted">No notebooks yet: create one above.</p>}
        <ul class="list" aria-label="Notebooks">
          {list.data?.map((nb) => (
            <li key={nb.id} class="row">
              {editing === nb.id ? (
                <form class="inline grow" onSubmit={(e) => rename(e, nb.id)}>
                  <label for={`rename-${nb.id}`} class="sr-only">
                    New title for {nb.title}
                  </label>
                  <input
                    id={`rename-${nb.id}`}
                    value={draft}
                    required
                    onInput={(e) => setDraft((e.currentTarget as HTMLInputElement).value)}
                  />
                  <button type="submit" class="primary">
                    Save
                  </button>
                  <button type="button" onClick={() => setEditing(null)}>
                    Cancel
                  </button>
                </form>
              ) : (
                <>
                  <div class="grow">
                    <a href={`/notebooks/${nb.id}`} onClick={linkClick}>
                      {nb.title}
                    </a>
                    <div class="muted small">Created {formatDate(nb.createdAt)}</div>
                  </div>
                  <button
                    type="button"
                    onClick={() => {
                      setEditing(nb.id);
                      setDraft(nb.title);
                    }}
                    aria-label={`Rename ${nb.title}`}
                  >
                    Rename
                  </button>
                  <button type="button" class="danger" onClick={() => void remove(nb.id)} aria-label={`Delete ${nb.title}`}>
                    Delete
                  </button>
                </>
              )}
            </li>
          ))}
        </ul>
      </Section>
      {trash.data && trash.data.length > 0 && (
        <Section title="Recycle bin">
          <ul class="list" aria-label="Deleted notebooks">
            {trash.data.map((nb) => (
              <li key={nb.id} class="row">
                <div class="grow">
                  {nb.title}
                  <div class="muted small">Deleted for good on {formatDate(nb.purgeAt)}</div>
                </div>
                <button type="button" onClick={() => void restore(nb.id)} aria-label={`Restore ${nb.title}`}>
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
