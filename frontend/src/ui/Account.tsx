import { useEffect, useState } from "preact/hooks";
import { changePassword, deleteAccount, downloadExport, updateName } from "../api/account";
import type { User } from "../api/types";
import { DoneText, ErrorText, Field, Section, useAction, usePageTitle } from "./common";

const PASSWORD_HINT = "At least 10 characters, mixing letters with digits or symbols.";

function Profile(props: { user: User; onChange: (user: User) => void }) {
  const [name, setName] = useState(props.user.name);
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const save = (e: Event) => {
    e.preventDefault();
    setDone(null);
    void action.run(async () => {
      const user = await updateName(name.trim());
      props.onChange(user);
      setName(user.name);
      setDone("Name saved.");
    });
  };
  const verified = props.user.emailVerified;
  return (
    <Section title="Profile">
      <p>
        Email: <strong>{props.user.email}</strong>
        {verified === false && <span class="muted"> (not confirmed yet)</span>}
      </p>
      <form onSubmit={save}>
        <Field id="account-name" label="Name" value={name} onInput={setName} required maxLength={100} autoComplete="name" />
        <button type="submit" class="primary" disabled={action.busy || name.trim() === props.user.name}>
          Save name
        </button>
      </form>
      <ErrorText error={action.error} />
      <DoneText text={done} />
    </Section>
  );
}

function Password(props: { onChange: (user: User) => void }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const save = (e: Event) => {
    e.preventDefault();
    setDone(null);
    void action.run(async () => {
      props.onChange(await changePassword(current, next));
      setCurrent("");
      setNext("");
      setDone("Password changed. Every other session of this account was signed out.");
    });
  };
  return (
    <Section title="Password">
      <form onSubmit={save}>
        <Field id="current-password" label="Current password" type="password" value={current} onInput={setCurrent} required autoComplete="current-password" />
        <Field id="new-password" label="New password" type="password" value={next} onInput={setNext} required minLength={10} autoComplete="new-password" hint={PASSWORD_HINT} />
        <button type="submit" class="primary" disabled={action.busy}>
          Change password
        </button>
      </form>
      <ErrorText error={action.error} />
      <DoneText text={done} />
    </Section>
  );
}

function Export() {
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const download = () => {
    setDone(null);
    void action.run(async () => setDone(`Saved ${await downloadExport()}.`));
  };
  return (
    <Section title="Your data">
      <p>
        A zip of everything you keep in Collabry: your profile, notebooks with their uploaded files, chats, planner tasks,
        notifications, plan and invoices, and the boards you own.
      </p>
      <button type="button" onClick={download} disabled={action.busy}>
        {action.busy ? "Preparing your data…" : "Download my data"}
      </button>
      <ErrorText error={action.error} />
      <DoneText text={done} />
    </Section>
  );
}

function Delete(props: { onDeleted: (status: "deleted" | "erasing") => void }) {
  const [confirming, setConfirming] = useState(false);
  const [password, setPassword] = useState("");
  const action = useAction();
  useEffect(() => {
    if (confirming) document.getElementById("delete-password")?.focus();
  }, [confirming]);
  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => props.onDeleted(await deleteAccount(password)));
  };
  return (
    <Section title="Delete my account">
      <p>
        Deleting your account erases your notebooks, uploaded files, chats, planner tasks and notifications, and boards
        nobody else is on. Boards you share go to another member. This cannot be undone.
      </p>
      {!confirming ? (
        <button type="button" class="danger" onClick={() => setConfirming(true)}>
          Delete my account
        </button>
      ) : (
        <form onSubmit={submit} aria-describedby={action.error ? "delete-error" : undefined}>
          <Field id="delete-password" label="Enter your password to confirm" type="password" value={password} onInput={setPassword} required autoComplete="current-password" />
          <div class="row">
            <button type="submit" class="danger" disabled={action.busy}>
              {action.busy ? "Deleting…" : "Delete my account permanently"}
            </button>
            <button
              type="button"
              onClick={() => {
                setConfirming(false);
                setPassword("");
                action.setError(null);
              }}
            >
              Cancel
            </button>
          </div>
          <ErrorText error={action.error} id="delete-error" />
        </form>
      )}
    </Section>
  );
}

export function AccountPage(props: {
  user: User;
  onUserChange: (user: User) => void;
  onDeleted: (status: "deleted" | "erasing") => void;
}) {
  usePageTitle("Account");
  return (
    <div class="page narrow">
      <h1>Account</h1>
      <Profile user={props.user} onChange={props.onUserChange} />
      <Password onChange={props.onUserChange} />
      <Export />
      <Delete onDeleted={props.onDeleted} />
    </div>
  );
}
