import { useEffect, useState } from "preact/hooks";
import { logout, restore, session } from "./api/client";
import { pendingAnswer } from "./api/sse";
import type { User } from "./api/types";
import { connectSocket, disconnectSocket } from "./realtime";
import { match, navigate, usePath } from "./router";
import { AccountPage } from "./ui/Account";
import { AuthPage } from "./ui/Auth";
import { BillingPage } from "./ui/Billing";
import { BoardPage, BoardsPage } from "./ui/Boards";
import { NotebookPage } from "./ui/Notebook";
import { NotebooksPage } from "./ui/Notebooks";
import { PlannerPage } from "./ui/Planner";
import { ForgotPasswordPage, ResetPasswordPage, VerifyEmailPage } from "./ui/Recovery";
import { Shell } from "./ui/Shell";

export function App() {
  const path = usePath();
  const [user, setUser] = useState<User | null>(null);
  const [ready, setReady] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    restore().then((u) => {
      setUser(u);
      setReady(true);
    });
    return session.subscribe((token, reason) => {
      if (token === null && reason === "expired") {
        setUser(null);
        setNotice("Your session has ended. Sign in again.");
      }
    });
  }, []);

  const userId = user?.id ?? null;
  useEffect(() => {
    if (!userId) return;
    const socket = connectSocket();
    const revoked = (event?: { reason?: string }) => {
      session.clear();
      setUser(null);
      setNotice(
        event?.reason === "password_changed"
          ? "Your password was changed. Sign in with the new one."
          : "You were signed out everywhere.",
      );
    };
    socket.on("session_revoked", revoked);
    return () => {
      socket.off("session_revoked", revoked);
      disconnectSocket();
    };
  }, [userId]);

  /** Ends the session in this tab only (the server has ended it already) and shows the sign-in form. */
  const signedOutBy = (message: string) => {
    pendingAnswer.clear();
    session.clear();
    setUser(null);
    setNotice(message);
    navigate("/login");
  };

  if (!ready) return <p class="boot">Loading Collabry…</p>;

  // the emailed links work whether or not this browser is signed in
  if (path === "/reset-password")
    return <ResetPasswordPage onDone={() => signedOutBy("Your password has been changed. Sign in with the new one.")} />;
  if (path === "/verify-email")
    return (
      <VerifyEmailPage
        signedIn={user !== null}
        onVerified={(u) => setUser((current) => (current && current.id === u.id ? u : current))}
      />
    );

  if (!user) {
    if (path === "/forgot-password") return <ForgotPasswordPage />;
    const mode = path === "/register" ? "register" : "login";
    return (
      <>
        {notice && (
          <p class="banner" role="status">
            {notice}
          </p>
        )}
        <AuthPage
          key={mode}
          mode={mode}
          onSignedIn={(u) => {
            setNotice(null);
            setUser(u);
            if (path === "/login" || path === "/register" || path === "/") navigate("/notebooks", true);
          }}
        />
      </>
    );
  }

  const signOut = async () => {
    pendingAnswer.clear();
    try {
      await logout();
    } finally {
      setUser(null);
      navigate("/login");
    }
  };

  let page;
  let params: Record<string, string> | null;
  if ((params = match("/notebooks/:id", path))) page = <NotebookPage id={params.id} tab="sources" />;
  else if ((params = match("/notebooks/:id/:tab", path)))
    page = <NotebookPage id={params.id} tab={params.tab as "sources" | "chat" | "study"} />;
  else if ((params = match("/boards/:id", path))) page = <BoardPage id={params.id} user={user} />;
  else if (path === "/boards") page = <BoardsPage />;
  else if (path === "/planner") page = <PlannerPage />;
  else if (path === "/billing") page = <BillingPage user={user} />;
  else if (path === "/account")
    page = (
      <AccountPage
        user={user}
        onUserChange={setUser}
        onDeleted={(status) =>
          signedOutBy(
            status === "deleted"
              ? "Your account has been deleted."
              : "Your account has been deleted. It can no longer sign in; the last of its data is being erased.",
          )
        }
      />
    );
  else {
    if (path !== "/notebooks") navigate("/notebooks", true);
    page = <NotebooksPage />;
  }

  return (
    <Shell user={user} path={path} onSignOut={signOut}>
      {page}
    </Shell>
  );
}
