import { useState } from "preact/hooks";
import { api } from "../api/client";
import type { Task } from "../api/types";
import { ErrorText, formatDate, Section, Spinner, useAction, useLoad, usePageTitle } from "./common";

/** The value of a datetime-local input for a Date, in local time. */
function localInput(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function PlannerPage() {
  usePageTitle("Planner");
  const list = useLoad(() => api<{ tasks: Task[] }>("/api/planner/tasks?status=all").then((r) => r.tasks), []);
  const [title, setTitle] = useState("");
  const [due, setDue] = useState(() => localInput(new Date(Date.now() + 24 * 3600_000)));
  const action = useAction();

  const create = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      // datetime-local is local time; the API wants a time zone, so send UTC
      await api("/api/planner/tasks", { json: { title, dueAt: new Date(due).toISOString() } });
      setTitle("");
      await list.reload();
    });
  };
  const toggle = (t: Task) =>
    action.run(async () => {
      await api(`/api/planner/tasks/${t.id}`, { method: "PATCH", json: { done: !t.done } });
      await list.reload();
    });
  const remove = (t: Task) =>
    action.run(async () => {
      await api(`/api/planner/tasks/${t.id}`, { method: "DELETE" });
      await list.reload();
    });

  const now = Date.now();
  return (
    <div class="page">
      <h1>Planner</h1>
      <Section title="New task">
        <form class="inline wrap" onSubmit={create}>
          <label for="task-title">Task</label>
          <input id="task-title" value={title} required onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)} />
          <label for="task-due">Due</label>
          <input id="task-due" type="datetime-local" value={due} required onInput={(e) => setDue((e.currentTarget as HTMLInputElement).value)} />
          <button class="primary" type="submit" disabled={action.busy}>
            Add task
          </button>
        </form>
        <p class="muted small">You get a notification an hour before a task is due, and when it is overdue.</p>
        <ErrorText error={action.error} />
      </Section>
      <Section title="Tasks">
        {list.loading && !list.data && <Spinner />}
        <ErrorText error={list.error} />
        {list.data && list.data.length === 0 && <p class="muted">Nothing planned.</p>}
        <ul class="list" aria-label="Tasks">
          {list.data?.map((t) => {
            const overdue = !t.done && new Date(t.dueAt).getTime() < now;
            return (
              <li key={t.id} class="row">
                <input type="checkbox" id={`done-${t.id}`} checked={t.done} onChange={() => void toggle(t)} />
                <label for={`done-${t.id}`} class={`grow ${t.done ? "done" : ""}`}>
                  {t.title}
                  <span class={`small ${overdue ? "error-text" : "muted"}`}>
                    {" "}
                    · due {formatDate(t.dueAt)}
                    {overdue ? " (overdue)" : ""}
                  </span>
                </label>
                <button type="button" class="danger" onClick={() => void remove(t)} aria-label={`Delete task ${t.title}`}>
                  Delete
                </button>
              </li>
            );
          })}
        </ul>
      </Section>
    </div>
  );
}
