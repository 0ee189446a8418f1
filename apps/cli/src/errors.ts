import { ApiError } from './client';

/** Exit codes scripts can rely on (documented in docs/cli.md and `berth --help`). */
export const ExitCode = {
  OK: 0,
  /** The API refused the request (4xx/5xx other than below), or an unexpected error. */
  ERROR: 1,
  /** Bad flags or arguments, caught before calling the API. */
  USAGE: 2,
  /** No credential, or the API rejected it (401) or the role is too low (403). */
  AUTH: 3,
  /** The new revision failed; the scheduler rolled back automatically (or had nothing to restore). */
  ROLLOUT_FAILED: 4,
  /** Still rolling out when --timeout ran out (the rollout itself goes on). */
  TIMEOUT: 5,
  /** The API could not be reached. */
  UNREACHABLE: 6,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  success (for deploy/rollback: the new revision is ACTIVE with every replica ready)
  1  the API refused the request (its message is printed), or an unexpected error
  2  usage error (bad flag or argument), caught before calling the API
  3  not logged in, bad/expired/revoked token (401), or role too low (403)
  4  the rollout failed: the revision FAILED and was rolled back automatically
  5  --timeout passed while the rollout was still in progress (it continues server-side)
  6  the API could not be reached`;

/** An error the CLI itself raises, with its exit code and an optional hint line. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.ERROR,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.USAGE, hint);
  }
}

/** What to print and which code to exit with, for any error that reaches the top. */
export function describeError(e: unknown): { message: string; hint?: string; exitCode: number } {
  if (e instanceof CliError) return { message: e.message, hint: e.hint, exitCode: e.exitCode };
  if (e instanceof ApiError) {
    const where = e.status ? ` (${e.code}, HTTP ${e.status})` : '';
    const message = `${e.message}${where}`;
    const d = (e.details ?? {}) as Record<string, any>;
    switch (e.status === 0 ? e.code : e.status) {
      case 'UNREACHABLE':
        return { message: e.message, hint: 'start it with `npm run up`, or point the CLI elsewhere with --api / BERTH_API', exitCode: ExitCode.UNREACHABLE };
      case 401:
        return {
          message,
          hint: 'the token was not accepted (unknown, revoked or expired): log in again with `berth login --token brt_...`, or set BERTH_TOKEN',
          exitCode: ExitCode.AUTH,
        };
      case 403:
        return {
          message,
          hint: d.required ? `this needs the ${d.required} role${d.role ? `; the credential has ${d.role}` : ''}: ask a project admin for a token with it` : 'ask a project admin for a token with a higher role',
          exitCode: ExitCode.AUTH,
        };
      case 404:
        return { message, hint: 'check the name (`berth services`, `berth revisions <service>`) and the project (--project / BERTH_PROJECT)', exitCode: ExitCode.ERROR };
      case 400: {
        const fields = Array.isArray(d.fields) ? d.fields.map((f: { field?: string; message?: string }) => f.message ?? f.field).filter(Boolean) : [];
        return { message, hint: fields.length > 1 ? fields.join('; ') : undefined, exitCode: ExitCode.ERROR };
      }
      case 409:
        if (d.forceRequired) {
          return { message, hint: `pick a revision that worked (\`berth revisions <service>\`), or add --force to roll back to revision ${d.revision ?? 'N'} anyway`, exitCode: ExitCode.ERROR };
        }
        return { message, hint: 'someone else changed it, or the name is taken: look at `berth events`', exitCode: ExitCode.ERROR };
      case 422:
        return { message, hint: 'check the image reference and that the tag was pushed; `berth resolve <ref>` tries it alone', exitCode: ExitCode.ERROR };
      case 429:
        return { message, hint: `rate limited; retry in ${d.retryAfterSeconds ?? 'a few'} s`, exitCode: ExitCode.ERROR };
      case 503:
        return { message, hint: 'a dependency (database, registry) is unavailable; retry shortly', exitCode: ExitCode.ERROR };
      default:
        return { message, exitCode: ExitCode.ERROR };
    }
  }
  const err = e as { code?: string; message?: string; exitCode?: number };
  return { message: err?.message ?? String(e), exitCode: ExitCode.ERROR };
}
