/**
 * Why a replica could not start, and whether trying again can help. Pure: it reads an error's
 * `code` (OCI errors carry one) and message (runc's own words), nothing else.
 *
 * Permanent (retrying the same spec cannot succeed, so the supervisor fails the replica at once and
 * the scheduler fails the rollout without waiting for its deadline):
 * - the command's executable is missing or not executable (`exec: "x": executable file not found`,
 *   `stat /x: no such file or directory`, `permission denied`, `exec format error`);
 * - the user or group is not in the image (`user "x" not found in the image's /etc/passwd`,
 *   runc's `unable to find user`);
 * - the image cannot be pulled as asked: unknown repository/tag/manifest or platform, credentials
 *   refused, a malformed manifest, a digest mismatch or a refused layer;
 * - any error the runtime itself marked unrecoverable (an invalid spec).
 * Everything else (registry unavailable, a runc timeout, a network attach failure) may pass: transient.
 */
export type StartFailureKind =
  | 'executable-not-found'
  | 'executable-not-runnable'
  | 'bad-user'
  | 'image-not-found'
  | 'pull-refused'
  | 'image-invalid'
  | 'invalid-spec'
  | 'transient';

export interface StartFailure {
  kind: StartFailureKind;
  permanent: boolean;
  /** Short, human: `executable "/app" not found`. The caller appends the raw message where useful. */
  summary: string;
}

const PERMANENT_OCI_CODES: Record<string, { kind: StartFailureKind; summary: string }> = {
  REGISTRY_NOT_FOUND: { kind: 'image-not-found', summary: 'image not found in the registry (manifest unknown)' },
  PLATFORM_NOT_FOUND: { kind: 'image-not-found', summary: 'image has no manifest for this node’s platform' },
  REGISTRY_AUTH: { kind: 'pull-refused', summary: 'registry refused the pull (credentials missing or rejected)' },
  MANIFEST_INVALID: { kind: 'image-invalid', summary: 'image manifest is invalid or of a kind Berth does not run' },
  DIGEST_MISMATCH: { kind: 'image-invalid', summary: 'image content does not match its digest' },
  LAYER_REFUSED: { kind: 'image-invalid', summary: 'an image layer was refused' },
};

export function classifyStartFailure(err: { message?: string; code?: string; recoverable?: boolean }): StartFailure {
  const message = String(err.message ?? '');
  const oci = err.code ? PERMANENT_OCI_CODES[err.code] : undefined;
  if (oci) return { ...oci, permanent: true };
  if (err.code === 'REGISTRY_UNAVAILABLE') return { kind: 'transient', permanent: false, summary: 'registry unavailable' };

  // runc (Go) wording: `exec: "nope": executable file not found in $PATH`, or for a path
  // `exec: "/nope": stat /nope: no such file or directory`.
  const exe = /exec: "((?:[^"\\]|\\.)*)"/.exec(message)?.[1];
  if (/executable file not found|no such file or directory/i.test(message) && (exe || /executable file not found/i.test(message))) {
    return { kind: 'executable-not-found', permanent: true, summary: `executable ${exe ? `"${exe}" ` : ''}not found` };
  }
  if (/exec format error|permission denied/i.test(message) && exe) {
    return { kind: 'executable-not-runnable', permanent: true, summary: `executable "${exe}" cannot be run (${/format/i.test(message) ? 'exec format error' : 'permission denied'})` };
  }
  const user = /user "((?:[^"\\]|\\.)*)" not found|unable to find user ([^\s:]+)/i.exec(message);
  if (user) return { kind: 'bad-user', permanent: true, summary: `user "${user[1] ?? user[2]}" not found in the image` };
  const group = /group "((?:[^"\\]|\\.)*)" not found|unable to find group ([^\s:]+)/i.exec(message);
  if (group) return { kind: 'bad-user', permanent: true, summary: `group "${group[1] ?? group[2]}" not found in the image` };
  if (/no such file or directory|permission denied|not a directory/i.test(message)) {
    return { kind: 'invalid-spec', permanent: true, summary: 'the container’s filesystem does not fit its spec' };
  }
  if (err.recoverable === false) return { kind: 'invalid-spec', permanent: true, summary: 'invalid container spec' };
  return { kind: 'transient', permanent: false, summary: 'start failed' };
}

/**
 * The message a start error should carry: the summary first (what the user reads in events), the
 * runtime's own words after it, unless they say nothing more.
 */
export function describeStartFailure(f: StartFailure, message: string): string {
  if (f.kind === 'transient' || f.kind === 'invalid-spec') return message;
  return message.includes(f.summary) ? message : `${f.summary}: ${message}`;
}
