import { Module } from '@nestjs/common';
import { NodeAdminRepository } from '@berth/db';
import { ImagesModule } from '../images/images.module';
import { NodeRedisAcl } from './node-redis-acl';
import { NodesController } from './nodes.controller';
import { NodesService } from './nodes.service';

/** The fleet as the api sees it: join tokens, registration, drain, per-node credentials, pull credentials. */
@Module({
  imports: [ImagesModule],
  controllers: [NodesController],
  providers: [NodeAdminRepository, NodeRedisAcl, NodesService],
  // The auth module's guard looks nodes up by credential.
  exports: [NodeAdminRepository],
})
export class NodesModule {}
