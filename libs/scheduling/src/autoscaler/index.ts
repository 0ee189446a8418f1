export * from './kpa';
export * from './concurrency-window';
