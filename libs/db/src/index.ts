export * from './prisma.service';
export * from './db.module';
export * from './repositories/autoscaler.repository';
export * from './repositories/event.repository';
export * from './repositories/idempotency.repository';
export * from './repositories/image.repository';
export * from './repositories/node-admin.repository';
export * from './repositories/node.repository';
export * from './repositories/project.repository';
export * from './repositories/registry-credential.repository';
export * from './repositories/replica.repository';
export * from './repositories/revision.repository';
export * from './repositories/scheduler.repository';
export * from './repositories/service.repository';
export * from './repositories/token.repository';
export * from './repositories/user.repository';

export { Prisma } from './generated/prisma/client';
export type {
  Project,
  User,
  Membership,
  ApiToken,
  RegistryCredential,
  IdempotencyKey,
  Image,
  ImageVersion,
  ImageTag,
  Layer,
  ImageVersionLayer,
  Service,
  Revision,
  Replica,
  Node,
  NodeJoinToken,
  Event,
  PrismaClient,
} from './generated/prisma/client';
export * as DbEnums from './generated/prisma/enums';
export * from './errors';
