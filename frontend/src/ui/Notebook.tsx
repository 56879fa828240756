import { api } from "../api/client";
import type { Notebook } from "../api/types";
import { linkClick } from "../router";
import { Chat } from "./Chat";
import { ErrorText, Spinner, useLoad, usePageTitle } from "./common";
import { Sources } from "./Sources";
import { Study } from "./Study";

type Tab = "sources" | "chat" | "study";
const TABS: { id: Tab; label: string }[] = [
  { id: "sources", label: "Sources" },
  { id: "chat", label: "Chat" },
  { id: "study", label: "Study tools" },
];

export function NotebookPage(props: { id: string; tab: Tab }) {
  const nb = useLoad(() => api<{ notebook: Notebook }>(`/api/notebooks/${props.id}`).then((r) => r.notebook), [props.id]);
  const tab = TABS.some((t) => t.id === props.tab) ? props.tab : "sources";
  usePageTitle(nb.data ? `${nb.data.title} · ${TABS.find((t) => t.id === tab)!.label}` : "Notebook");
  if (nb.error) return <ErrorText error={nb.error} />;
  if (!nb.data) return <Spinner />;
  return (
    <div class="page">
      <p class="crumbs">
        <a href="/notebooks" onClick={linkClick}>
          Notebooks
        </a>{" "}
        /
      </p>
      <h1>{nb.data.title}</h1>
      <nav aria-label="Notebook sections" class="tabs">
        <ul>
          {TABS.map((t) => (
            <li key={t.id}>
              <a
                href={t.id === "sources" ? `/notebooks/${props.id}` : `/notebooks/${props.id}/${t.id}`}
                onClick={linkClick}
                aria-current={t.id === tab ? "page" : undefined}
              >
                {t.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {tab === "sources" && <Sources notebookId={props.id} />}
      {tab === "chat" && <Chat notebookId={props.id} />}
      {tab === "study" && <Study notebookId={props.id} />}
    </div>
  );
}
