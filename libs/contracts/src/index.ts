export * from './states';
export * from './queues';
export * from './errors';
export * from './routing';
export * from './service-config';
export * from './node-redis';
