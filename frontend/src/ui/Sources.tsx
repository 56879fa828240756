import { useEffect, useRef, useState } from "preact/hooks";
import { api, upload } from "../api/client";
import { describeError } from "../api/errors";
import type { Source } from "../api/types";
import { ErrorText, formatBytes, Section, Spinner, useAction, useLoad } from "./common";

const STATUS_LABEL: Record<Source["status"], string> = {
  processing: "Processing…",
  ready: "Ready",
  failed: "Failed",
};

export function Sources(props: { notebookId: string }) {
  const base = `/api/notebooks/${props.notebookId}/sources`;
  const list = useLoad(() => api<{ sources: Source[] }>(base).then((r) => r.sources), [base]);
  const [file, setFile] = useState<File | null>(null);
  const [title, setTitle] = useState("");
  const [progress, setProgress] = useState<number | null>(null);
  const [uploadError, setUploadError] = useState<string | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const action = useAction();

  // Live status: poll while anything is still processing.
  const processing = list.data?.some((s) => s.status === "processing") ?? false;
  useEffect(() => {
    if (!processing) return;
    const t = setInterval(() => void list.reload(), 1000);
    return () => clearInterval(t);
  }, [processing, list.reload]);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    if (title.trim()) form.append("title", title.trim());
    setUploadError(null);
    setProgress(0);
    try {
      await upload(base, form, setProgress).promise;
      setFile(null);
      setTitle("");
      if (fileInput.current) fileInput.current.value = "";
      await list.reload();
    } catch (err) {
      setUploadError(describeError(err));
    } finally {
      setProgress(null);
    }
  };

  const remove = (s: Source) =>
    action.run(async () => {
      await api(`${base}/${s.id}`, { method: "DELETE" });
      await list.reload();
    });

  return (
    <>
      <Section title="Add a source">
        <form class="stack" onSubmit={submit}>
          <div class="field">
            <label for="source-file">File (PDF, text or Markdown, up to 25 MB)</label>
            <input
              ref={fileInput}
              id="source-file"
              type="file"
              accept=".pdf,.txt,.md,.markdown,application/pdf,text/plain,text/markdown"
              required
              onChange={(e) => {
                const f = (e.currentTarget as HTMLInputElement).files?.[0] ?? null;
                setFile(f);
                if (f && !title) setTitle(f.name.replace(/\.[^.]+$/, ""));
              }}
            />
          </div>
          <div class="field">
            <label for="source-title">Title (optional)</label>
            <input id="source-title" value={title} onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)} />
          </div>
          {progress !== null && (
            <div class="field">
              <label for="upload-progress">Uploading {file?.name}</label>
              <progress id="upload-progress" max={1} value={progress} aria-valuetext={`${Math.round(progress * 100)} %`} />
            </div>
          )}
          <ErrorText error={uploadError} />
          <button class="primary" type="submit" disabled={progress !== null || !file}>
            Upload
          </button>
        </form>
      </Section>
      <Section title="Sources">
        {list.loading && !list.data && <Spinner />}
        <ErrorText error={list.error ?? action.error} />
        {list.data && list.data.length === 0 && <p class="muted">No sources yet. Upload your notes or a paper.</p>}
        <ul class="list" aria-label="Sources" aria-live="polite">
          {list.data?.map((s) => (
            <li key={s.id} class="row" data-testid="source">
              <div class="grow">
                <span class="source-title">{s.title}</span>{" "}
                <span class={`status status-${s.status}`} data-status={s.status}>
                  {STATUS_LABEL[s.status] ?? s.status}
                </span>
                <div class="muted small">
                  {s.kind ?? ""} {s.size ? `· ${formatBytes(s.size)}` : ""} {s.status === "ready" ? `· ${s.chunks} passages` : ""}
                  {s.status === "failed" && s.error ? ` · ${s.error}` : ""}
                </div>
              </div>
              <button type="button" class="danger" onClick={() => void remove(s)} aria-label={`Delete source ${s.title}`}>
                Delete
              </button>
            </li>
          ))}
        </ul>
      </Section>
    </>
  );
}
