import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api/client";
import type { Notification, User } from "../api/types";
import { connectSocket } from "../realtime";
import { linkClick } from "../router";
import { formatDate } from "./common";

const NAV = [
  { href: "/notebooks", label: "Notebooks" },
  { href: "/boards", label: "Boards" },
  { href: "/planner", label: "Planner" },
  { href: "/billing", label: "Plans & usage" },
  { href: "/account", label: "Account" },
];

export function Shell(props: { user: User; path: string; onSignOut: () => void; children: ComponentChildren }) {
  const [items, setItems] = useState<Notification[]>([]);
  const [unread, setUnread] = useState(0);
  const [open, setOpen] = useState(false);
  const [toast, setToast] = useState<Notification | null>(null);
  const [connected, setConnected] = useState(false);
  const panel = useRef<HTMLDivElement>(null);

  useEffect(() => {
    api<{ notifications: Notification[]; unread: number }>("/api/notifications?limit=30")
      .then((r) => {
        setItems(r.notifications);
        setUnread(r.unread);
      })
      .catch(() => undefined);
    const socket = connectSocket();
    const onNotification = (n: Notification) => {
      setItems((list) => [{ ...n, read: false, createdAt: n.createdAt ?? new Date().toISOString() }, ...list]);
      setUnread((u) => u + 1);
      setToast(n);
    };
    const onConnect = () => setConnected(true);
    const onDisconnect = () => setConnected(false);
    setConnected(socket.connected);
    socket.on("notification", onNotification);
    socket.on("connect", onConnect);
    socket.on("disconnect", onDisconnect);
    return () => {
      socket.off("notification", onNotification);
      socket.off("connect", onConnect);
      socket.off("disconnect", onDisconnect);
    };
  }, []);

  useEffect(() => {
    if (!toast) return;
    const t = setTimeout(() => setToast(null), 8000);
    return () => clearTimeout(t);
  }, [toast]);

  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") setOpen(false);
    };
    document.addEventListener("keydown", onKey);
    panel.current?.focus();
    return () => document.removeEventListener("keydown", onKey);
  }, [open]);

  const readAll = async () => {
    await api("/api/notifications/read-all", { method: "POST" });
    setItems((list) => list.map((n) => ({ ...n, read: true })));
    setUnread(0);
  };
  const readOne = async (n: Notification) => {
    if (n.read) return;
    await api(`/api/notifications/${encodeURIComponent(n.id)}/read`, { method: "POST" });
    setItems((list) => list.map((m) => (m.id === n.id ? { ...m, read: true } : m)));
    setUnread((u) => Math.max(0, u - 1));
  };

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/notebooks" onClick={linkClick}>
          Collabry
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.href}>
                <a
                  href={item.href}
                  onClick={linkClick}
                  aria-current={props.path.startsWith(item.href) ? "page" : undefined}
                >
                  {item.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="top-right">
          <span
            class={`conn ${connected ? "on" : "off"}`}
            data-testid="connection"
            data-state={connected ? "live" : "offline"}
            role="img"
            aria-label={connected ? "Live updates on" : "Live updates reconnecting"}
            title={connected ? "Live updates on" : "Reconnecting…"}
          />
          <button
            type="button"
            class="bell"
            aria-expanded={open}
            aria-controls="notifications"
            onClick={() => setOpen(!open)}
          >
            Notifications{" "}
            <span class="badge" aria-label={`${unread} unread`} data-testid="unread">
              {unread}
            </span>
          </button>
          <span class="who" title={props.user.email}>
            {props.user.name}
          </span>
          <button type="button" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      {open && (
        <div id="notifications" class="panel" role="region" aria-label="Notifications" tabIndex={-1} ref={panel}>
          <div class="card-head">
            <h2>Notifications</h2>
            <button type="button" onClick={readAll} disabled={unread === 0}>
              Mark all read
            </button>
          </div>
          {items.length === 0 ? (
            <p class="muted">Nothing yet.</p>
          ) : (
            <ul class="list">
              {items.map((n) => (
                <li key={n.id} class={n.read ? "" : "unread"}>
                  <strong>{n.title}</strong> <span class="muted">{formatDate(n.createdAt)}</span>
                  <div>{n.body}</div>
                  {!n.read && (
                    <button type="button" class="link" onClick={() => void readOne(n)}>
                      Mark read
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <div class="toast-area" aria-live="polite" role="status">
        {toast && (
          <div class="toast" data-testid="toast">
            <strong>{toast.title}</strong>
            <div>{toast.body}</div>
          </div>
        )}
      </div>
      <main id="main" tabIndex={-1}>
        {props.children}
      </main>
    </>
  );
}
