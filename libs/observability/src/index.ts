export * from './logger';
export * from './metrics';
export * from './health';
export * from './redis-check';
export * from './process';
