-- AlterTable
ALTER TABLE "Revision" ADD COLUMN     "rolloutStartedAt" TIMESTAMP(3);
