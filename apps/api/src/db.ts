// The api's repositories (libs/db/src/repositories), re-exported here because the @berth/db alias
// maps to the library's index only.
export * from '../../../libs/db/src/repositories/project.repository';
export * from '../../../libs/db/src/repositories/user.repository';
export * from '../../../libs/db/src/repositories/token.repository';
export * from '../../../libs/db/src/repositories/registry-credential.repository';
export * from '../../../libs/db/src/repositories/image.repository';
export * from '../../../libs/db/src/repositories/service.repository';
export * from '../../../libs/db/src/repositories/revision.repository';
export * from '../../../libs/db/src/repositories/event.repository';
export * from '../../../libs/db/src/repositories/idempotency.repository';
export * from '../../../libs/db/src/repositories/node-admin.repository';
