export * from './states';
export * from './queues';
export * from './errors';
export * from './routing';
