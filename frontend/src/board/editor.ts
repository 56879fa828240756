/**
 * A board's Yjs document kept in step over Socket.IO (loaded only on the board page).
 *
 * Protocol (docs/realtime.md): `board:join` answers the whole document as one base64 update;
 * `board:update` sends a local update and is acknowledged once stored; the server relays it to the
 * other members. The shared text is the document's `content` Y.Text, bound to a textarea.
 */

import type { Socket } from "socket.io-client";
import * as Y from "yjs";
import { fromBase64, textDiff, toBase64 } from "./base64";

const REMOTE = "remote";

export interface BoardHandlers {
  onPeers: (users: { id: string; name: string }[]) => void;
  onStatus: (status: "joining" | "live" | "offline" | "read-only") => void;
  onError: (message: string) => void;
}

export function bindBoard(socket: Socket, boardId: string, area: HTMLTextAreaElement, h: BoardHandlers): () => void {
  const doc = new Y.Doc();
  const text = doc.getText("content");
  const pending: Uint8Array[] = [];
  let joined = false;
  let sending = false;
  let closed = false;

  const render = (delta?: { retain?: number; insert?: unknown; delete?: number }[]) => {
    const value = text.toString();
    if (area.value === value) return;
    let { selectionStart: s, selectionEnd: e } = area;
    if (delta && document.activeElement === area) {
      // move the caret through the remote change
      let pos = 0;
      for (const op of delta) {
        if (op.retain) pos += op.retain;
        else if (typeof op.insert === "string") {
          const n = op.insert.length;
          if (pos <= s) s += n;
          if (pos <= e) e += n;
          pos += n;
        } else if (op.delete) {
          const n = op.delete;
          if (pos < s) s -= Math.min(n, s - pos);
          if (pos < e) e -= Math.min(n, e - pos);
        }
      }
    }
    area.value = value;
    if (document.activeElement === area) area.setSelectionRange(s, e);
  };

  text.observe((event, tr) => {
    if (tr.origin === REMOTE) render(event.delta as { retain?: number; insert?: unknown; delete?: number }[]);
  });

  const flush = () => {
    if (sending || !joined || pending.length === 0 || closed) return;
    sending = true;
    const update = Y.mergeUpdates(pending.splice(0, pending.length));
    socket.emit("board:update", { boardId, update: toBase64(update) }, (ack: { ok: boolean; error?: { code: string; message: string } }) => {
      sending = false;
      if (ack?.ok) {
        flush();
        return;
      }
      const code = ack?.error?.code;
      if (code === "forbidden") {
        h.onStatus("read-only");
        area.readOnly = true;
        return;
      }
      if (code === "not_found") {
        h.onError("This board is no longer shared with you.");
        return;
      }
      // not stored (unavailable, rate limited, not joined after a reconnect): keep it for later
      pending.unshift(update);
      setTimeout(flush, code === "rate_limited" ? 1000 : 300);
    });
  };

  doc.on("update", (update: Uint8Array, origin: unknown) => {
    if (origin === REMOTE) return;
    pending.push(update);
    flush();
  });

  const onInput = () => {
    const d = textDiff(text.toString(), area.value);
    doc.transact(() => {
      if (d.remove) text.delete(d.index, d.remove);
      if (d.insert) text.insert(d.index, d.insert);
    }, "local");
  };
  area.addEventListener("input", onInput);

  const onUpdate = (msg: { boardId: string; update: string }) => {
    if (msg.boardId === boardId) Y.applyUpdate(doc, fromBase64(msg.update), REMOTE);
  };
  const onPresence = (msg: { boardId: string; users: { id: string; name: string }[] }) => {
    if (msg.boardId === boardId) h.onPeers(msg.users);
  };
  const join = () => {
    h.onStatus("joining");
    socket.emit(
      "board:join",
      { boardId },
      (ack: { ok: boolean; state?: string; peers?: { id: string; name: string }[]; error?: { message: string } }) => {
        if (closed) return;
        if (!ack?.ok) {
          h.onError(ack?.error?.message ?? "cannot open the board");
          return;
        }
        if (ack.state) Y.applyUpdate(doc, fromBase64(ack.state), REMOTE);
        render();
        joined = true;
        h.onPeers(ack.peers ?? []);
        h.onStatus(area.readOnly ? "read-only" : "live");
        flush();
      },
    );
  };
  const onDisconnect = () => {
    joined = false;
    h.onStatus("offline");
  };
  // The owner removed this member or deleted the board: the server has already taken the socket
  // out of the board's room, so stop editing and say why.
  const onRemoved = (msg: { boardId: string }) => {
    if (msg.boardId !== boardId) return;
    joined = false;
    area.readOnly = true;
    h.onError("You no longer have access to this board.");
  };

  socket.on("board:update", onUpdate);
  socket.on("presence", onPresence);
  socket.on("connect", join); // every reconnection joins again
  socket.on("disconnect", onDisconnect);
  socket.on("board:removed", onRemoved);
  if (socket.connected) join();

  return () => {
    closed = true;
    area.removeEventListener("input", onInput);
    socket.off("board:update", onUpdate);
    socket.off("presence", onPresence);
    socket.off("connect", join);
    socket.off("disconnect", onDisconnect);
    socket.off("board:removed", onRemoved);
    if (socket.connected) socket.emit("board:leave", { boardId });
    doc.destroy();
  };
}
