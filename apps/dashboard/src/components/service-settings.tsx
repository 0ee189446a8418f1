import { useState, type FormEvent } from 'react';
import type { ApiError } from '../api/client';
import type { Revision, ServiceDetail } from '../api/types';
import { useApp } from '../context';
import { fieldErrors, formFromSpec, parseEnv, toConfigInput, type FieldErrors, type ServiceFormValues } from '../lib/service-form';
import { Field, ServiceFields } from './service-fields';
import { Confirm, ErrorBox } from './ui';

/**
 * The service's settings tab: edit its configuration (`PATCH`: a new revision when what runs changes,
 * scaling alone does not make one) and delete it, behind a confirmation that asks for its name.
 */
export function SettingsPanel({ service, onBegin, onChanged }: { service: ServiceDetail; onBegin: () => void; onChanged: (revision: number | null) => void }) {
  const { api, can, role, navigate } = useApp();
  const [values, setValues] = useState<ServiceFormValues>(() => formFromSpec(service.spec));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);
  const [deleting, setDeleting] = useState(false);
  const [typed, setTyped] = useState('');
  const [deleteError, setDeleteError] = useState<unknown>();

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    setError(undefined);
    setSaved(null);
    const env = parseEnv(values.env);
    if (env.error) {
      setErrors({ env: env.error });
      return;
    }
    onBegin();
    setBusy(true);
    try {
      const res = await api.request<{ revision: Revision | null; service: ServiceDetail }>('PATCH', `/v1/services/${service.name}`, toConfigInput(values));
      setValues(formFromSpec(res.service.spec));
      setSaved(res.revision ? `Saved as revision ${res.revision.number}; it rolls out now.` : 'Saved. Nothing that runs changed, so no new revision.');
      onChanged(res.revision?.number ?? null);
    } catch (err) {
      setErrors(fieldErrors((err as ApiError).details));
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    setDeleteError(undefined);
    setBusy(true);
    try {
      await api.request('DELETE', `/v1/services/${service.name}`);
      setDeleting(false);
      navigate({ page: 'services' });
    } catch (err) {
      setDeleteError(err);
      setDeleting(false);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      {can.deploy ? (
        <section className="card" aria-labelledby="edit-title">
          <h2 id="edit-title">Edit configuration</h2>
          <form className="stack" onSubmit={save} data-testid="edit-form">
            <ServiceFields values={values} onChange={setValues} errors={errors} />
            {errors.form ? <p className="field-error">{errors.form}</p> : null}
            <div className="actions">
              <button type="submit" className="primary" disabled={busy}>
                {busy ? 'Saving…' : 'Save and deploy'}
              </button>
              <button type="button" disabled={busy} onClick={() => (setValues(formFromSpec(service.spec)), setErrors({}), setError(undefined))}>
                Reset
              </button>
            </div>
            <ErrorBox error={error} />
            {saved ? (
              <p role="status" data-testid="edit-saved">
                {saved}
              </p>
            ) : null}
          </form>
        </section>
      ) : (
        <p>Your role ({role ?? 'none'}) can read this service's configuration but not change it.</p>
      )}
      {role === 'admin' ? (
        <section className="card" aria-labelledby="delete-title">
          <h2 id="delete-title">Delete service</h2>
          <p>Stops every replica and frees its URL. Its revisions and events stay readable.</p>
          <div className="actions">
            <button type="button" className="danger" onClick={() => (setTyped(''), setDeleting(true))}>
              Delete {service.name}
            </button>
          </div>
          <ErrorBox error={deleteError} />
        </section>
      ) : null}
      <Confirm
        open={deleting}
        title={`Delete ${service.name}?`}
        confirmLabel="Delete"
        busy={busy}
        disabled={typed !== service.name}
        onConfirm={remove}
        onCancel={() => setDeleting(false)}
      >
        <p>Every replica of {service.name} stops now. This cannot be undone.</p>
        <Field label={`Type ${service.name} to confirm`}>
          {(a) => <input name="confirm-name" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false} {...a} />}
        </Field>
      </Confirm>
    </>
  );
}
