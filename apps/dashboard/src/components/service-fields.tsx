import { useId, type ReactNode } from 'react';
import type { RestartPolicy } from '../api/types';
import type { FieldErrors, ServiceFormValues } from '../lib/service-form';

/** A labelled input with the api's message for it right below (linked by aria-describedby). */
export function Field({ label, error, hint, children }: { label: string; error?: string | undefined; hint?: string; children: (a11y: { 'aria-invalid'?: true; 'aria-describedby'?: string }) => ReactNode }) {
  const id = useId();
  const described = [error ? `${id}-err` : null, hint ? `${id}-hint` : null].filter(Boolean).join(' ');
  return (
    <div className={error ? 'field invalid' : 'field'}>
      <label>
        <span className="label-text">{label}</span>
        {children({ ...(error ? { 'aria-invalid': true as const } : {}), ...(described ? { 'aria-describedby': described } : {}) })}
      </label>
      {hint ? (
        <span className="hint" id={`${id}-hint`}>
          {hint}
        </span>
      ) : null}
      {error ? (
        <span className="field-error" id={`${id}-err`} data-testid="field-error">
          {error}
        </span>
      ) : null}
    </div>
  );
}

/** Port, env, resources, scaling and restart policy: the fields shared by "New service" and "Edit". */
export function ServiceFields({ values, onChange, errors }: { values: ServiceFormValues; onChange: (v: ServiceFormValues) => void; errors: FieldErrors }) {
  const set = <K extends keyof ServiceFormValues>(k: K) => (v: ServiceFormValues[K]) => onChange({ ...values, [k]: v });
  const text = (k: 'port' | 'cpu' | 'memory' | 'min' | 'max' | 'targetConcurrency' | 'maxRetries', label: string, hint?: string, extra: Record<string, unknown> = {}) => (
    <Field label={label} error={errors[k]} {...(hint ? { hint } : {})}>
      {(a) => <input name={k} value={values[k]} onChange={(e) => set(k)(e.target.value)} spellCheck={false} autoComplete="off" {...extra} {...a} />}
    </Field>
  );
  return (
    <>
      <fieldset>
        <legend>Networking</legend>
        <label className="check">
          <input name="worker" type="checkbox" checked={values.worker} onChange={(e) => set('worker')(e.target.checked)} />
          <span className="label-text">Worker: serves no port (no URL, ready once running, not autoscaled)</span>
        </label>
        {values.worker ? null : text('port', 'Port', undefined, { inputMode: 'numeric', required: true })}
      </fieldset>
      <fieldset>
        <legend>Resources</legend>
        <div className="row fields">
          {text('cpu', 'CPU', '500m or 0.5 (CPUs)')}
          {text('memory', 'Memory', '256Mi, 1Gi or 512m')}
        </div>
      </fieldset>
      <fieldset>
        <legend>Scaling</legend>
        <div className="row fields">
          {text('min', 'Min instances', '0 scales to zero when idle', { inputMode: 'numeric' })}
          {text('max', 'Max instances', undefined, { inputMode: 'numeric' })}
          {text('targetConcurrency', 'Concurrency', 'requests in flight per replica', { inputMode: 'numeric' })}
        </div>
      </fieldset>
      <fieldset>
        <legend>Restarts</legend>
        <div className="row fields">
          <Field label="Restart policy" error={errors.restart}>
            {(a) => (
              <select name="restart" value={values.restart} onChange={(e) => set('restart')(e.target.value as RestartPolicy['policy'])} {...a}>
                <option value="always">always</option>
                <option value="on-failure">on-failure</option>
                <option value="no">no</option>
              </select>
            )}
          </Field>
          {values.restart === 'on-failure' ? text('maxRetries', 'Max retries', '0 = no limit', { inputMode: 'numeric' }) : null}
        </div>
      </fieldset>
      <Field label="Environment variables" error={errors.env} hint="NAME=value, one a line">
        {(a) => <textarea name="env" rows={3} spellCheck={false} value={values.env} onChange={(e) => set('env')(e.target.value)} {...a} />}
      </Field>
    </>
  );
}
