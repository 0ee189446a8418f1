import { useEffect, useRef, useState } from 'react';
import type { ApiError } from '../api/client';
import type { ServiceSummary } from '../api/types';
import { ImageResolver } from '../components/image-resolver';
import { Field, ServiceFields } from '../components/service-fields';
import { ErrorBox, Link, StateBadge } from '../components/ui';
import { useApp } from '../context';
import { usePoll, useNow } from '../hooks';
import { serviceState } from '../lib/badges';
import { formatAgo, pinnedReference, shortDigest } from '../lib/format';
import { fieldErrors, NEW_SERVICE_FORM, parseEnv, toConfigInput, type FieldErrors, type ServiceFormValues } from '../lib/service-form';

export const POLL_MS = 2000;

export function ServicesPage() {
  const { api, project, can, navigate } = useApp();
  const now = useNow();
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState('');
  const [values, setValues] = useState<ServiceFormValues>(NEW_SERVICE_FORM);
  const [errors, setErrors] = useState<FieldErrors>({});
  const h1 = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `Services · ${project} · Berth`;
  }, [project]);

  // The list carries each service's replica counts and scaling bounds: one request per refresh.
  const list = usePoll(async () => api.all<ServiceSummary>('/v1/services'), POLL_MS, [project]);

  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1} ref={h1}>
          Services
        </h1>
        {can.deploy ? (
          <button type="button" aria-expanded={creating} aria-controls="new-service" onClick={() => setCreating((c) => !c)}>
            {creating ? 'Close' : 'New service'}
          </button>
        ) : null}
      </div>
      {can.deploy && creating ? (
        <section id="new-service" className="card" aria-labelledby="new-service-title">
          <h2 id="new-service-title">New service</h2>
          <ImageResolver
            idPrefix="create"
            initial=""
            extraFields={
              <>
                <Field label="Name" error={errors.name}>
                  {(a) => (
                    <input
                      name="name"
                      required
                      pattern="[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?"
                      title="lowercase letters, digits and dashes (a DNS label)"
                      value={name}
                      onChange={(e) => setName(e.target.value)}
                      {...a}
                    />
                  )}
                </Field>
                <ServiceFields values={values} onChange={setValues} errors={errors} />
                {errors.form ? <p className="field-error">{errors.form}</p> : null}
              </>
            }
            confirmLabel={(r) => `Create ${name || 'service'} with ${shortDigest(r.digest)}`}
            onConfirm={async (r) => {
              setErrors({});
              const env = parseEnv(values.env);
              if (env.error) {
                setErrors({ env: env.error });
                throw new Error(`Environment variables: ${env.error}`);
              }
              // The reference as typed, pinned to the digest shown: the api keeps them as two fields.
              const body = { name, image: pinnedReference(r.reference, r.digest), ...toConfigInput(values) };
              try {
                await api.post('/v1/services', body);
              } catch (e) {
                setErrors(fieldErrors((e as ApiError).details));
                throw e;
              }
              setCreating(false);
              navigate({ page: 'service', name });
            }}
          />
        </section>
      ) : null}
      <ErrorBox error={list.error} title="Could not refresh" />
      {list.loading && !list.data ? <p role="status">Loading services…</p> : null}
      {list.data && list.data.length === 0 ? <p>No services yet.{can.deploy ? ' Create one with “New service”.' : ''}</p> : null}
      {list.data && list.data.length > 0 ? (
        <div className="table-wrap">
          <table className="services">
            <caption className="sr-only">Services in project {project}, refreshed every 2 seconds</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Revision</th>
                <th scope="col">Replicas</th>
                <th scope="col">Scaling</th>
                <th scope="col">URL</th>
                <th scope="col">Last deploy</th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((s) => {
                const st = serviceState(s);
                return (
                  <tr key={s.id} data-service={s.name}>
                    <th scope="row">
                      <Link to={{ page: 'service', name: s.name }}>{s.name}</Link>
                    </th>
                    <td>
                      <StateBadge state={st.label} tone={st.tone} />
                    </td>
                    <td>
                      {s.activeRevision ? (
                        <>
                          #{s.activeRevision.number} <span className="tag">{s.activeRevision.tag ?? shortDigest(s.activeRevision.digest)}</span>
                          {s.activeRevision.status === 'ROLLING_OUT' || s.activeRevision.status === 'PENDING' ? <span className="hint"> rolling out</span> : null}
                        </>
                      ) : (
                        '—'
                      )}
                    </td>
                    <td data-testid="replicas">
                      {s.replicas.ready}/{s.replicas.desired} ready
                    </td>
                    <td data-testid="scaling" title={s.scaling.summary}>
                      {s.scaling.min === s.scaling.max ? `fixed at ${s.scaling.min}` : `${s.scaling.min}–${s.scaling.max}`}
                    </td>
                    <td>
                      {s.url ? (
                        <a href={s.url} target="_blank" rel="noreferrer" className="url">
                          {s.url.replace(/^https?:\/\//, '')}
                        </a>
                      ) : (
                        <span className="muted">worker</span>
                      )}
                    </td>
                    <td>
                      <time dateTime={s.activeRevision?.createdAt}>{formatAgo(s.activeRevision?.createdAt, now)}</time>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}
