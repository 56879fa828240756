/**
 * The Socket.IO connection of a signed-in person (notifications, session revocation, boards).
 *
 * `auth` is a function, so every (re)connection presents the current access token; a refused
 * connection (`unauthorized`, e.g. an expired token) renews the token once and tries again.
 */

import { io, type Socket } from "socket.io-client";
import { session } from "./api/client";

let socket: Socket | null = null;

export function connectSocket(): Socket {
  if (socket) return socket;
  const s = io({
    path: "/socket.io/",
    auth: (cb) => cb({ token: session.accessToken ?? "" }),
    reconnectionDelay: 500,
    reconnectionDelayMax: 5_000,
  });
  let renewed = false;
  s.on("connect", () => {
    renewed = false;
  });
  s.on("connect_error", (err: Error) => {
    if (err.message === "unauthorized" && !renewed && session.signedIn) {
      renewed = true;
      session
        .refresh()
        .then(() => s.connect())
        .catch(() => undefined);
    }
  });
  socket = s;
  return s;
}

export function currentSocket(): Socket | null {
  return socket;
}

export function disconnectSocket(): void {
  socket?.disconnect();
  socket = null;
}
