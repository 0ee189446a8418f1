import type { HealthReport } from '@berth/observability';

/** IPC between the gateway primary and its workers (node:cluster). */
export const Msg = {
  /** worker → primary: the proxy listener is up (port it listens on). */
  listening: 'berth:gateway:listening',
  /** primary → worker: run your readiness checks (id). */
  readyReq: 'berth:gateway:ready?',
  /** worker → primary: readiness report for request id. */
  readyRes: 'berth:gateway:ready',
  /** primary → worker: drain and exit. */
  shutdown: 'berth:gateway:shutdown',
} as const;

export type PrimaryMessage = { type: typeof Msg.readyReq; id: number } | { type: typeof Msg.shutdown };
export type WorkerMessage = { type: typeof Msg.listening; port: number } | { type: typeof Msg.readyRes; id: number; report: HealthReport };

export const isMessage = (m: unknown): m is { type: string } => typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
