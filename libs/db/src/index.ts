export * from './prisma.service';
export * from './db.module';
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
