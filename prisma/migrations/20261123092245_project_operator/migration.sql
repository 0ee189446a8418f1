-- AlterTable
ALTER TABLE "Project" ADD COLUMN     "operator" BOOLEAN NOT NULL DEFAULT false;
