import { Module } from '@nestjs/common';
import { ImageRepository, RegistryCredentialRepository } from '@berth/db';
import { ImagesController } from './images.controller';
import { ImagesService } from './images.service';
import { RegistryCredentialsService } from './registry-credentials.service';

/** Image resolution against registries and the project's registry credentials. */
@Module({
  controllers: [ImagesController],
  providers: [ImageRepository, RegistryCredentialRepository, ImagesService, RegistryCredentialsService],
  // Services resolve images on deploy; nodes hand pull credentials to agents.
  exports: [ImagesService, RegistryCredentialsService],
})
export class ImagesModule {}
