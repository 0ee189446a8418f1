/**
 * `@berth/db/migrate`: the offline migration tool (Prisma's wasm schema engine) and database
 * administration helpers, as their own entry so the apps' `@berth/db` does not load the engine.
 */
export * from './migrate';
export * from './database-admin';
export * from './schema-engine';
