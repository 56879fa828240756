import { useState } from "preact/hooks";
import { login, register } from "../api/client";
import type { User } from "../api/types";
import { linkClick } from "../router";
import { ErrorText, Field, useAction, usePageTitle } from "./common";

export function AuthPage(props: { mode: "login" | "register"; onSignedIn: (user: User) => void }) {
  const { mode } = props;
  usePageTitle(mode === "login" ? "Sign in" : "Create an account");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const action = useAction();

  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      if (mode === "register") await register(email, password, name);
      props.onSignedIn(await login(email, password));
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
          <button type="submit" class="primary" disabled={action.busy}>
            {action.busy ? "Please wait…" : mode === "login" ? "Sign in" : "Create account"}
          </button>
        </form>
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
