-- AlterTable
ALTER TABLE "Node" ADD COLUMN     "credentialHash" TEXT,
ADD COLUMN     "credentialIssuedAt" TIMESTAMP(3),
ADD COLUMN     "credentialPrefix" TEXT,
ADD COLUMN     "credentialRevokedAt" TIMESTAMP(3),
ADD COLUMN     "joinTokenId" UUID;

-- AlterTable
ALTER TABLE "NodeJoinToken" ADD COLUMN     "nodeName" TEXT,
ADD COLUMN     "prefix" TEXT NOT NULL DEFAULT '',
ADD COLUMN     "useCount" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "usedAt" TIMESTAMP(3),
ADD COLUMN     "usedBy" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "Node_credentialHash_key" ON "Node"("credentialHash");

-- CreateIndex
CREATE INDEX "NodeJoinToken_createdAt_idx" ON "NodeJoinToken"("createdAt");
