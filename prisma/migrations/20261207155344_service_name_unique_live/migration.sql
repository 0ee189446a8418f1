-- DropIndex
DROP INDEX "Service_projectId_name_key";

-- CreateIndex
CREATE UNIQUE INDEX "Service_projectId_name_key" ON "Service"("projectId", "name") WHERE ("deletedAt" IS NULL);
