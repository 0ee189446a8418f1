-- AlterTable
ALTER TABLE "Node" ADD COLUMN     "podCidr" TEXT,
ADD COLUMN     "wireguardPublicKey" TEXT,
ADD COLUMN     "underlayAddress" TEXT,
ADD COLUMN     "redisPasswordHash" TEXT,
ADD COLUMN     "schedulable" BOOLEAN NOT NULL DEFAULT true;

-- CreateIndex
CREATE UNIQUE INDEX "Node_podCidr_key" ON "Node"("podCidr");
