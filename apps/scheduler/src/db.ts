// The scheduler's repositories (libs/db/src/repositories), re-exported here because the @berth/db
// alias maps to the library's index only.
export * from '../../../libs/db/src/repositories/scheduler.repository';
export * from '../../../libs/db/src/repositories/node.repository';
export * from '../../../libs/db/src/repositories/replica.repository';
