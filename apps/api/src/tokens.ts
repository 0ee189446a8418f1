export const REDIS = Symbol('REDIS');
export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');
/** 32-byte AES-256-GCM key (Buffer) resolved at boot from BERTH_SECRET_KEY or the development key file. */
export const SECRET_KEY = Symbol('SECRET_KEY');
export const CLOCK = Symbol('CLOCK');
export type Clock = () => Date;
