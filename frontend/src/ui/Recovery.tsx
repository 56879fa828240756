/** Pages reached without signing in: a forgotten password, the emailed reset and confirmation links. */

import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { forgotPassword, resendVerification, resetPassword, tokenFrom, verifyEmail } from "../api/account";
import { sentence } from "../api/errors";
import type { User } from "../api/types";
import { linkClick } from "../router";
import { DoneText, ErrorText, Field, Spinner, useAction, usePageTitle } from "./common";

function Card(props: { title: string; children: ComponentChildren }) {
  usePageTitle(props.title);
  return (
    <main id="main" class="auth">
      <div class="card auth-card">
        <h1>{props.title}</h1>
        {props.children}
      </div>
    </main>
  );
}

function SignInLink() {
  return (
    <p>
      <a href="/login" onClick={linkClick}>
        Back to sign in
      </a>
    </p>
  );
}

/** "Send the link again" for an unconfirmed email: a button when the email is known, else a form. */
export function ResendVerification(props: { email?: string }) {
  const [email, setEmail] = useState(props.email ?? "");
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const send = (e: Event) => {
    e.preventDefault();
    setDone(null);
    void action.run(async () => setDone(sentence(await resendVerification(props.email ?? email))));
  };
  return (
    <form onSubmit={send} class="resend">
      {props.email === undefined && (
        <Field id="resend-email" label="Email" type="email" value={email} onInput={setEmail} required autoComplete="email" />
      )}
      <button type="submit" disabled={action.busy}>
        Send the link again
      </button>
      <ErrorText error={action.error} />
      <DoneText text={done} />
    </form>
  );
}

export function ForgotPasswordPage() {
  const [email, setEmail] = useState("");
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    setDone(null);
    void action.run(async () => setDone(sentence(await forgotPassword(email))));
  };
  return (
    <Card title="Forgot your password?">
      <p class="muted">Enter the email of your account: we send it a link to choose a new password.</p>
      <form onSubmit={submit}>
        <Field id="email" label="Email" type="email" value={email} onInput={setEmail} required autoComplete="email" />
        <ErrorText error={action.error} />
        <button type="submit" class="primary" disabled={action.busy}>
          {action.busy ? "Please wait…" : "Send reset link"}
        </button>
      </form>
      <DoneText text={done} />
      {done && (
        <p>
          <a href="/reset-password" onClick={linkClick}>
            Enter the code from the email
          </a>
        </p>
      )}
      <SignInLink />
    </Card>
  );
}

export function ResetPasswordPage(props: { onDone: () => void }) {
  // the emailed link carries the token; without it, the code printed in the email is typed in
  const [fromLink] = useState(() => tokenFrom(location.search));
  const [code, setCode] = useState("");
  const [password, setPassword] = useState("");
  const action = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      await resetPassword(fromLink ?? code.trim(), password);
      props.onDone();
    });
  };
  return (
    <Card title="Choose a new password">
      <form onSubmit={submit}>
        {!fromLink && (
          <Field id="reset-code" label="Code from the email" value={code} onInput={setCode} required autoComplete="one-time-code" />
        )}
        <Field
          id="new-password"
          label="New password"
          type="password"
          value={password}
          onInput={setPassword}
          required
          minLength={10}
          autoComplete="new-password"
          hint="At least 10 characters, mixing letters with digits or symbols."
        />
        <ErrorText error={action.error} />
        <button type="submit" class="primary" disabled={action.busy}>
          {action.busy ? "Please wait…" : "Set new password"}
        </button>
      </form>
      <p>
        <a href="/forgot-password" onClick={linkClick}>
          Ask for a new link
        </a>
      </p>
      <SignInLink />
    </Card>
  );
}

export function VerifyEmailPage(props: { signedIn: boolean; onVerified: (user: User) => void }) {
  const [token, setToken] = useState(() => tokenFrom(location.search));
  const [code, setCode] = useState("");
  const [user, setUser] = useState<User | null>(null);
  const action = useAction();
  useEffect(() => {
    if (!token) return;
    void action.run(async () => {
      const u = await verifyEmail(token);
      setUser(u);
      props.onVerified(u);
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [token]);
  const pending = token !== null && user === null && action.error === null;
  return (
    <Card title="Confirm your email">
      {(!token || action.error) && !user && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setToken(code.trim() || null);
          }}
        >
          <Field id="verify-code" label="Code from the email" value={code} onInput={setCode} required autoComplete="one-time-code" />
          <button type="submit" class="primary">
            Confirm
          </button>
        </form>
      )}
      {pending && <Spinner label="Confirming your email address…" />}
      {user && (
        <>
          <DoneText text={`Your email address ${user.email} is confirmed.`} />
          <p>
            {props.signedIn ? (
              <a href="/notebooks" onClick={linkClick}>
                Continue to your notebooks
              </a>
            ) : (
              <a href="/login" onClick={linkClick}>
                Sign in
              </a>
            )}
          </p>
        </>
      )}
      {action.error && (
        <>
          <ErrorText error={action.error} />
          <ResendVerification />
        </>
      )}
      {!user && <SignInLink />}
    </Card>
  );
}
