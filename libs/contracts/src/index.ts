export * from './states';
export * from './queues';
export * from './errors';
export * from './routing';
export * from './service-config';
export * from './quantities';
export * from './since';
