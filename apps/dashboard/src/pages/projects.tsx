import { useEffect, useState, type FormEvent } from 'react';
import type { ApiToken, Member, Project, Role } from '../api/types';
import { Field } from '../components/service-fields';
import { Badge, Confirm, ErrorBox } from '../components/ui';
import { useApp } from '../context';
import { useNow, usePoll } from '../hooks';
import { formatAgo } from '../lib/format';
import { errorsByField } from '../lib/service-form';

const ROLES: Role[] = ['viewer', 'deployer', 'admin'];

/** The role picker of the member and token forms. */
function RoleField({ value, onChange, error }: { value: Role; onChange: (r: Role) => void; error: string | undefined }) {
  return (
    <Field label="Role" error={error}>
      {(a) => (
        <select name="role" value={value} onChange={(e) => onChange(e.target.value as Role)} {...a}>
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
      )}
    </Field>
  );
}

function useTitle(t: string) {
  const { project } = useApp();
  useEffect(() => {
    document.title = `${t} · ${project} · Berth`;
  }, [t, project]);
}

/** A form's submit: busy flag, the api's error (and its per-field messages). */
function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = async (e: FormEvent, fn: () => Promise<void>) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, fields: errorsByField(error), run, clear: () => setError(undefined) };
}

export function ProjectsPage() {
  const { api, projects, project, user, reloadProjects, switchProject } = useApp();
  useTitle('Projects');
  const [slug, setSlug] = useState('');
  const [name, setName] = useState('');
  const form = useSubmit();

  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1}>Projects</h1>
      </div>
      <div className="table-wrap">
        <table data-testid="projects-table">
          <caption className="sr-only">Projects you belong to</caption>
          <thead>
            <tr>
              <th scope="col">Slug</th>
              <th scope="col">Name</th>
              <th scope="col">Your role</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {projects.map((p: Project) => (
              <tr key={p.id} data-project={p.slug}>
                <th scope="row">
                  <code>{p.slug}</code>
                  {p.operator ? <Badge tone="muted">operator</Badge> : null}
                </th>
                <td>{p.name}</td>
                <td>{p.role}</td>
                <td>
                  {p.slug === project ? (
                    <span className="muted">in use</span>
                  ) : (
                    <button type="button" onClick={() => switchProject(p.slug)} aria-label={`Use project ${p.slug}`}>
                      Use
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {user ? (
        <section className="card" aria-labelledby="new-project-title">
          <h2 id="new-project-title">New project</h2>
          <form
            className="stack"
            onSubmit={(e) =>
              form.run(e, async () => {
                const created = await api.post<Project>('/v1/projects', { slug: slug.trim(), ...(name.trim() ? { name: name.trim() } : {}) });
                setSlug('');
                setName('');
                reloadProjects();
                switchProject(created.slug);
              })
            }
          >
            <div className="row fields">
              <Field label="Slug" error={form.fields.slug} hint="a DNS label; part of service URLs">
                {(a) => <input name="slug" required value={slug} onChange={(e) => setSlug(e.target.value)} autoComplete="off" spellCheck={false} {...a} />}
              </Field>
              <Field label="Display name" error={form.fields.name}>
                {(a) => <input name="projectName" value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" {...a} />}
              </Field>
            </div>
            <div className="actions">
              <button type="submit" className="primary" disabled={form.busy}>
                {form.busy ? 'Creating…' : 'Create project'}
              </button>
            </div>
            <ErrorBox error={form.error} />
          </form>
        </section>
      ) : (
        <p className="hint">Signed in with an API token: it belongs to one project. Sign in with email and password to create projects.</p>
      )}
    </>
  );
}

export function MembersPage() {
  const { api, project, role } = useApp();
  useTitle('Members');
  const now = useNow(10_000);
  const admin = role === 'admin';
  const list = usePoll((signal) => api.get<{ items: Member[] }>('/v1/members?limit=200', signal), 10_000, [project]);
  const [email, setEmail] = useState('');
  const [newRole, setNewRole] = useState<Role>('viewer');
  const [password, setPassword] = useState('');
  const [removing, setRemoving] = useState<Member | null>(null);
  const [removeError, setRemoveError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const form = useSubmit();

  const remove = async () => {
    if (!removing) return;
    setBusy(true);
    setRemoveError(undefined);
    try {
      await api.request('DELETE', `/v1/members/${encodeURIComponent(removing.userId)}`);
      setRemoving(null);
      list.reload();
    } catch (e) {
      setRemoveError(e);
      setRemoving(null);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1}>Members</h1>
      </div>
      <p className="hint">People with access to project {project}.</p>
      <ErrorBox error={list.error} title="Could not load members" />
      <ErrorBox error={removeError} title="Could not remove" />
      {list.data ? (
        <div className="table-wrap">
          <table data-testid="members-table">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Since</th>
                {admin ? (
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((m) => (
                <tr key={m.userId} data-member={m.email}>
                  <th scope="row">{m.email}</th>
                  <td>{m.role}</td>
                  <td>{formatAgo(m.createdAt, now)}</td>
                  {admin ? (
                    <td>
                      <button type="button" className="danger" onClick={() => setRemoving(m)} aria-label={`Remove ${m.email}`}>
                        Remove
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {admin ? (
        <section className="card" aria-labelledby="add-member-title">
          <h2 id="add-member-title">Add a member or change a role</h2>
          <form
            className="stack"
            onSubmit={(e) =>
              form.run(e, async () => {
                await api.post('/v1/members', { email: email.trim(), role: newRole, ...(password ? { password } : {}) });
                setEmail('');
                setPassword('');
                list.reload();
              })
            }
          >
            <div className="row fields">
              <Field label="Email" error={form.fields.email}>
                {(a) => <input name="email" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="off" {...a} />}
              </Field>
              <RoleField value={newRole} onChange={setNewRole} error={form.fields.role} />
              <Field label="Initial password" error={form.fields.password} hint="only for someone without an account yet (8+ characters)">
                {(a) => <input name="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" {...a} />}
              </Field>
            </div>
            <div className="actions">
              <button type="submit" className="primary" disabled={form.busy}>
                {form.busy ? 'Saving…' : 'Add member'}
              </button>
            </div>
            <ErrorBox error={form.error} />
          </form>
        </section>
      ) : null}
      <Confirm
        open={removing !== null}
        title={removing ? `Remove ${removing.email}?` : ''}
        confirmLabel="Remove"
        busy={busy}
        onConfirm={remove}
        onCancel={() => setRemoving(null)}
      >
        <p>They lose access to project {project} at once; their account stays.</p>
      </Confirm>
    </>
  );
}

export function TokensPage() {
  const { api, project, role } = useApp();
  useTitle('API tokens');
  const now = useNow(10_000);
  const list = usePoll((signal) => api.get<{ items: ApiToken[] }>('/v1/tokens?limit=200', signal), 10_000, [project]);
  const [name, setName] = useState('');
  const [newRole, setNewRole] = useState<Role>('deployer');
  const [days, setDays] = useState('');
  const [secret, setSecret] = useState<{ name: string; token: string } | null>(null);
  const [revoking, setRevoking] = useState<ApiToken | null>(null);
  const [revokeError, setRevokeError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const form = useSubmit();

  if (role !== 'admin') {
    return (
      <>
        <h1 tabIndex={-1}>API tokens</h1>
        <p>Only admins of {project} manage its API tokens.</p>
      </>
    );
  }

  const revoke = async () => {
    if (!revoking) return;
    setBusy(true);
    setRevokeError(undefined);
    try {
      await api.request('DELETE', `/v1/tokens/${encodeURIComponent(revoking.id)}`);
      list.reload();
    } catch (e) {
      setRevokeError(e);
    } finally {
      setRevoking(null);
      setBusy(false);
    }
  };

  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1}>API tokens</h1>
      </div>
      <p className="hint">Tokens act in project {project} with their role, for the CLI and CI. The secret is shown once, when it is created.</p>
      <section className="card" aria-labelledby="new-token-title">
        <h2 id="new-token-title">New token</h2>
        <form
          className="stack"
          onSubmit={(e) =>
            form.run(e, async () => {
              setSecret(null);
              const t = await api.post<ApiToken & { token: string }>('/v1/tokens', { name: name.trim(), role: newRole, ...(days.trim() ? { expiresInDays: Number(days) } : {}) });
              setSecret({ name: t.name, token: t.token });
              setName('');
              list.reload();
            })
          }
        >
          <div className="row fields">
            <Field label="Token name" error={form.fields.name}>
              {(a) => <input name="tokenName" required value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" {...a} />}
            </Field>
            <RoleField value={newRole} onChange={setNewRole} error={form.fields.role} />
            <Field label="Expires in days" error={form.fields.expiresInDays} hint="empty: never">
              {(a) => <input name="expiresInDays" inputMode="numeric" value={days} onChange={(e) => setDays(e.target.value)} {...a} />}
            </Field>
          </div>
          <div className="actions">
            <button type="submit" className="primary" disabled={form.busy}>
              {form.busy ? 'Creating…' : 'Create token'}
            </button>
          </div>
          <ErrorBox error={form.error} />
        </form>
        {secret ? (
          <div className="resolved" role="status" data-testid="token-secret">
            <p>
              <strong>Copy the secret of “{secret.name}” now: it is not shown again.</strong>
            </p>
            <code className="secret" data-testid="token-secret-value">
              {secret.token}
            </code>
            <div className="actions">
              <button type="button" onClick={() => void navigator.clipboard?.writeText(secret.token)}>
                Copy
              </button>
              <button type="button" onClick={() => setSecret(null)}>
                Done
              </button>
            </div>
          </div>
        ) : null}
      </section>
      <ErrorBox error={list.error} title="Could not load tokens" />
      <ErrorBox error={revokeError} title="Could not revoke" />
      {list.data ? (
        <div className="table-wrap">
          <table data-testid="tokens-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Role</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((t) => (
                <tr key={t.id} data-token={t.name}>
                  <th scope="row">{t.name}</th>
                  <td>
                    <code>{t.prefix}…</code>
                  </td>
                  <td>{t.role}</td>
                  <td>{t.lastUsedAt ? formatAgo(t.lastUsedAt, now) : 'never'}</td>
                  <td>{t.expiresAt ? new Date(t.expiresAt).toLocaleDateString() : 'never'}</td>
                  <td>{t.revokedAt ? <Badge tone="muted">revoked</Badge> : <Badge tone="ok">active</Badge>}</td>
                  <td>
                    {t.revokedAt ? null : (
                      <button type="button" className="danger" onClick={() => setRevoking(t)} aria-label={`Revoke ${t.name}`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Confirm
        open={revoking !== null}
        title={revoking ? `Revoke ${revoking.name}?` : ''}
        confirmLabel="Revoke"
        busy={busy}
        onConfirm={revoke}
        onCancel={() => setRevoking(null)}
      >
        <p>Anything using this token is refused from now on. This cannot be undone.</p>
      </Confirm>
    </>
  );
}
