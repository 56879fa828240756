import { useState } from "preact/hooks";
import { login, register } from "../api/client";
import { ApiError } from "../api/errors";
import type { User } from "../api/types";
import { linkClick } from "../router";
import { DoneText, ErrorText, Field, useAction, usePageTitle } from "./common";
import { ResendVerification } from "./Recovery";

export function AuthPage(props: { mode: "login" | "register"; onSignedIn: (user: User) => void }) {
  const { mode } = props;
  usePageTitle(mode === "login" ? "Sign in" : "Create an account");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  // an account whose email waits for its confirmation: the address to send the link to again
  const [unconfirmed, setUnconfirmed] = useState<string | null>(null);
  const [sent, setSent] = useState<string | null>(null);
  const action = useAction();

  const submit = (e: Event) => {
    e.preventDefault();
    setUnconfirmed(null);
    setSent(null);
    void action.run(async () => {
      if (mode === "register") {
        const user = await register(email, password, name);
        if (user.emailVerified === false) {
          // the server wants the address confirmed before the first sign-in
          setSent(`We sent a confirmation link to ${user.email}. Open it, then sign in.`);
          setUnconfirmed(user.email);
          return;
        }
      }
      try {
        props.onSignedIn(await login(email, password));
      } catch (err) {
        if (err instanceof ApiError && err.code === "email_unverified") setUnconfirmed(email);
        throw err;
      }
    });
  };

  return (
    <main id="main" class="auth">
      <div class="card auth-card">
        <h1>{mode === "login" ? "Sign in to Collabry" : "Create your Collabry account"}</h1>
        <p class="muted">Your AI study companion: notebooks, a tutor grounded in your material, and live boards.</p>
        <form onSubmit={submit} aria-describedby={action.error ? "auth-error" : undefined}>
          {mode === "register" && (
            <Field id="name" label="Name" value={name} onInput={setName} required autoComplete="name" />
          )}
          <Field id="email" label="Email" type="email" value={email} onInput={setEmail} required autoComplete="email" />
          <Field
            id="password"
            label="Password"
            type="password"
            value={password}
            onInput={setPassword}
            required
            minLength={mode === "register" ? 10 : undefined}
            autoComplete={mode === "login" ? "current-password" : "new-password"}
            hint={mode === "register" ? "At least 10 characters, mixing letters with digits or symbols." : undefined}
          />
          <ErrorText error={action.error} id="auth-error" />
          <DoneText text={sent} />
          <button type="submit" class="primary" disabled={action.busy}>
            {action.busy ? "Please wait…" : mode === "login" ? "Sign in" : "Create account"}
          </button>
        </form>
        {unconfirmed && <ResendVerification key={unconfirmed} email={unconfirmed} />}
        {mode === "login" && (
          <p>
            <a href="/forgot-password" onClick={linkClick}>
              Forgot password?
            </a>
          </p>
        )}
        <p>
          {mode === "login" ? (
            <>
              New here?{" "}
              <a href="/register" onClick={linkClick}>
                Create an account
              </a>
            </>
          ) : (
            <>
              Already have an account?{" "}
              <a href="/login" onClick={linkClick}>
                Sign in
              </a>
            </>
          )}
        </p>
      </div>
    </main>
  );
}
