import { DynamicModule, Global, Module } from '@nestjs/common';
import { DbOptions, PrismaService } from './prisma.service';

@Global()
@Module({})
export class DbModule {
  /** Registers PrismaService; repositories are provided by the modules that use them. */
  static forRoot(opts: DbOptions): DynamicModule {
    return {
      module: DbModule,
      providers: [{ provide: PrismaService, useFactory: () => new PrismaService(opts) }],
      exports: [PrismaService],
    };
  }
}
