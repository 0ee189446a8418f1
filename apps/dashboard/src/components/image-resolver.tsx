import { useId, useState, type FormEvent } from 'react';
import type { ResolvedImage } from '../api/types';
import { useApp } from '../context';
import { formatBytes } from '../lib/format';
import { ErrorBox } from './ui';

/**
 * Two-step image form: resolve the reference at its registry (`POST /v1/images`) and show the pinned
 * digest, then let the user confirm with exactly that digest. Changing the reference clears it.
 */
export function ImageResolver({
  initial,
  confirmLabel,
  onConfirm,
  extraFields,
  idPrefix,
}: {
  initial: string;
  confirmLabel: (r: ResolvedImage) => string;
  onConfirm: (r: ResolvedImage) => Promise<void>;
  extraFields?: React.ReactNode;
  idPrefix: string;
}) {
  const { api } = useApp();
  const [reference, setReference] = useState(initial);
  const [resolved, setResolved] = useState<ResolvedImage>();
  const [busy, setBusy] = useState<'resolve' | 'confirm' | null>(null);
  const [error, setError] = useState<unknown>();
  const hintId = useId();

  const resolve = async (e: FormEvent) => {
    e.preventDefault();
    setBusy('resolve');
    setError(undefined);
    setResolved(undefined);
    try {
      setResolved(await api.post<ResolvedImage>('/v1/images', { reference: reference.trim() }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  const confirm = async () => {
    if (!resolved) return;
    setBusy('confirm');
    setError(undefined);
    try {
      // Deploy the digest that was shown, not whatever the tag points at by now.
      await onConfirm(resolved);
      setResolved(undefined);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <form onSubmit={resolve} className="stack">
      {extraFields}
      <label>
        <span className="label-text">Image reference</span>
        <input
          id={`${idPrefix}-reference`}
          name="reference"
          required
          spellCheck={false}
          autoComplete="off"
          placeholder="registry.example.com/team/app:1.4"
          aria-describedby={hintId}
          value={reference}
          onChange={(e) => {
            setReference(e.target.value);
            setResolved(undefined);
          }}
        />
      </label>
      <p className="hint" id={hintId}>
        The tag is resolved to a digest first; what you confirm is pinned to that digest.
      </p>
      <div className="actions">
        <button type="submit" disabled={busy !== null}>
          {busy === 'resolve' ? 'Resolving…' : 'Resolve digest'}
        </button>
      </div>
      <div aria-live="polite">
        {resolved ? (
          <div className="resolved" data-testid={`${idPrefix}-resolved`}>
            <dl className="kv">
              <dt>Reference</dt>
              <dd>
                <code>{resolved.reference}</code>
              </dd>
              <dt>Digest</dt>
              <dd>
                <code className="digest" data-testid={`${idPrefix}-digest`}>
                  {resolved.digest}
                </code>
              </dd>
              <dt>Platform</dt>
              <dd>{resolved.platform}</dd>
              <dt>Size</dt>
              <dd>{formatBytes(resolved.totalSize)}</dd>
            </dl>
            <div className="actions">
              <button type="button" className="primary" onClick={confirm} disabled={busy !== null}>
                {busy === 'confirm' ? 'Working…' : confirmLabel(resolved)}
              </button>
              <button type="button" onClick={() => setResolved(undefined)} disabled={busy !== null}>
                Cancel
              </button>
            </div>
          </div>
        ) : null}
      </div>
      <ErrorBox error={error} />
    </form>
  );
}
