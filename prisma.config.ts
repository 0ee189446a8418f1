// For users who have Prisma's native schema engine: `npx prisma migrate deploy` works with this file.
// Berth itself applies the same migrations offline with `npm run db:migrate` (libs/db/src/migrate).
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/berth' },
});
