-- AlterTable
ALTER TABLE "Replica" ADD COLUMN     "completedAt" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "Service" ALTER COLUMN "port" DROP NOT NULL;
