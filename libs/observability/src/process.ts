import type { Logger } from 'pino';

/**
 * Graceful shutdown for a Berth process: on SIGTERM/SIGINT run the registered closers in reverse
 * order (last opened, first closed), then exit. A second signal exits at once.
 */
export function onShutdown(log: Logger, closers: (() => Promise<unknown> | unknown)[]): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'shutting down');
    for (const close of [...closers].reverse()) {
      try {
        await close();
      } catch (e) {
        log.warn({ err: e }, 'error while shutting down');
      }
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

/** Turns an unexpected start-up failure into one readable line and a non-zero exit. */
export function exitOnStartupError(app: string) {
  return (e: unknown) => {
    process.stderr.write(`berth-${app}: failed to start: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  };
}
