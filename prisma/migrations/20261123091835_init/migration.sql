-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "Role" AS ENUM ('ADMIN', 'DEPLOYER', 'VIEWER');

-- CreateEnum
CREATE TYPE "ReplicaState" AS ENUM ('PENDING', 'SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF', 'FAILED', 'STOPPING', 'STOPPED', 'LOST');

-- CreateEnum
CREATE TYPE "RevisionStatus" AS ENUM ('PENDING', 'ROLLING_OUT', 'ACTIVE', 'SUPERSEDED', 'FAILED');

-- CreateEnum
CREATE TYPE "NodeStatus" AS ENUM ('READY', 'DRAINING', 'DOWN');

-- CreateEnum
CREATE TYPE "RestartPolicy" AS ENUM ('NO', 'ALWAYS', 'ON_FAILURE');

-- CreateEnum
CREATE TYPE "PlacementStrategy" AS ENUM ('SPREAD', 'BINPACK');

-- CreateEnum
CREATE TYPE "RevisionReason" AS ENUM ('CREATE', 'DEPLOY', 'CONFIG', 'ROLLBACK', 'AUTO_ROLLBACK');

-- CreateEnum
CREATE TYPE "EventLevel" AS ENUM ('INFO', 'WARN', 'ERROR');

-- CreateTable
CREATE TABLE "Project" (
    "id" UUID NOT NULL,
    "slug" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Project_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "User" (
    "id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "passwordHash" TEXT NOT NULL,
    "name" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Membership" (
    "userId" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "role" "Role" NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Membership_pkey" PRIMARY KEY ("userId","projectId")
);

-- CreateTable
CREATE TABLE "ApiToken" (
    "id" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "role" "Role" NOT NULL,
    "createdById" UUID,
    "lastUsedAt" TIMESTAMP(3),
    "expiresAt" TIMESTAMP(3),
    "revokedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ApiToken_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RegistryCredential" (
    "id" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "registry" TEXT NOT NULL,
    "username" TEXT NOT NULL,
    "secret" BYTEA NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "RegistryCredential_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "IdempotencyKey" (
    "id" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "principal" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "requestHash" TEXT NOT NULL,
    "status" INTEGER NOT NULL,
    "response" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "IdempotencyKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Image" (
    "id" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "registry" TEXT NOT NULL,
    "repository" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Image_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ImageVersion" (
    "id" UUID NOT NULL,
    "imageId" UUID NOT NULL,
    "digest" TEXT NOT NULL,
    "indexDigest" TEXT,
    "mediaType" TEXT NOT NULL,
    "platform" TEXT NOT NULL,
    "manifest" JSONB NOT NULL,
    "configDigest" TEXT NOT NULL,
    "config" JSONB NOT NULL,
    "totalSize" BIGINT NOT NULL,
    "resolvedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ImageVersion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ImageTag" (
    "imageId" UUID NOT NULL,
    "tag" TEXT NOT NULL,
    "versionId" UUID NOT NULL,
    "resolvedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ImageTag_pkey" PRIMARY KEY ("imageId","tag")
);

-- CreateTable
CREATE TABLE "Layer" (
    "digest" TEXT NOT NULL,
    "size" BIGINT NOT NULL,
    "mediaType" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Layer_pkey" PRIMARY KEY ("digest")
);

-- CreateTable
CREATE TABLE "ImageVersionLayer" (
    "versionId" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "layerDigest" TEXT NOT NULL,

    CONSTRAINT "ImageVersionLayer_pkey" PRIMARY KEY ("versionId","position")
);

-- CreateTable
CREATE TABLE "Service" (
    "id" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "port" INTEGER NOT NULL,
    "env" JSONB NOT NULL DEFAULT '{}',
    "command" JSONB,
    "cpuMillis" INTEGER NOT NULL,
    "memoryMiB" INTEGER NOT NULL,
    "pidsLimit" INTEGER NOT NULL,
    "restartPolicy" "RestartPolicy" NOT NULL DEFAULT 'ALWAYS',
    "restartMaxRetries" INTEGER NOT NULL DEFAULT 0,
    "healthCheck" JSONB,
    "minScale" INTEGER NOT NULL DEFAULT 1,
    "maxScale" INTEGER NOT NULL DEFAULT 1,
    "targetConcurrency" INTEGER NOT NULL DEFAULT 100,
    "desiredReplicas" INTEGER NOT NULL DEFAULT 1,
    "placement" "PlacementStrategy" NOT NULL DEFAULT 'SPREAD',
    "constraints" JSONB NOT NULL DEFAULT '{}',
    "maxSurge" TEXT NOT NULL DEFAULT '25%',
    "maxUnavailable" TEXT NOT NULL DEFAULT '0',
    "activeRevisionId" UUID,
    "generation" INTEGER NOT NULL DEFAULT 0,
    "deletedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Service_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Revision" (
    "id" UUID NOT NULL,
    "serviceId" UUID NOT NULL,
    "number" INTEGER NOT NULL,
    "imageVersionId" UUID NOT NULL,
    "imageRef" TEXT NOT NULL,
    "imageDigest" TEXT NOT NULL,
    "config" JSONB NOT NULL,
    "reason" "RevisionReason" NOT NULL,
    "sourceRevisionId" UUID,
    "createdBy" TEXT NOT NULL,
    "createdByTokenId" UUID,
    "status" "RevisionStatus" NOT NULL DEFAULT 'PENDING',
    "statusReason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "activatedAt" TIMESTAMP(3),

    CONSTRAINT "Revision_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Replica" (
    "id" UUID NOT NULL,
    "serviceId" UUID NOT NULL,
    "revisionId" UUID NOT NULL,
    "nodeId" UUID,
    "state" "ReplicaState" NOT NULL DEFAULT 'PENDING',
    "generation" INTEGER NOT NULL DEFAULT 0,
    "pendingReason" TEXT,
    "restartCount" INTEGER NOT NULL DEFAULT 0,
    "lastExitCode" INTEGER,
    "lastExitReason" TEXT,
    "address" TEXT,
    "port" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3),
    "readyAt" TIMESTAMP(3),
    "stoppedAt" TIMESTAMP(3),

    CONSTRAINT "Replica_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Node" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "address" TEXT NOT NULL,
    "labels" JSONB NOT NULL DEFAULT '{}',
    "cpuMillis" INTEGER NOT NULL,
    "memoryMiB" INTEGER NOT NULL,
    "pids" INTEGER NOT NULL,
    "status" "NodeStatus" NOT NULL DEFAULT 'READY',
    "lastHeartbeatAt" TIMESTAMP(3),
    "agentVersion" TEXT NOT NULL,
    "cachedImages" JSONB NOT NULL DEFAULT '[]',
    "joinedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Node_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "NodeJoinToken" (
    "id" UUID NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "description" TEXT,
    "createdBy" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3),
    "revokedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "NodeJoinToken_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Event" (
    "id" BIGSERIAL NOT NULL,
    "projectId" UUID,
    "serviceId" UUID,
    "revisionId" UUID,
    "replicaId" UUID,
    "nodeId" UUID,
    "type" TEXT NOT NULL,
    "level" "EventLevel" NOT NULL DEFAULT 'INFO',
    "message" TEXT NOT NULL,
    "data" JSONB NOT NULL DEFAULT '{}',
    "actor" TEXT NOT NULL,
    "tokenId" UUID,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Event_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Project_slug_key" ON "Project"("slug");

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- CreateIndex
CREATE INDEX "Membership_projectId_idx" ON "Membership"("projectId");

-- CreateIndex
CREATE UNIQUE INDEX "ApiToken_tokenHash_key" ON "ApiToken"("tokenHash");

-- CreateIndex
CREATE INDEX "ApiToken_projectId_createdAt_idx" ON "ApiToken"("projectId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "RegistryCredential_projectId_registry_key" ON "RegistryCredential"("projectId", "registry");

-- CreateIndex
CREATE INDEX "IdempotencyKey_createdAt_idx" ON "IdempotencyKey"("createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "IdempotencyKey_projectId_principal_key_key" ON "IdempotencyKey"("projectId", "principal", "key");

-- CreateIndex
CREATE UNIQUE INDEX "Image_projectId_registry_repository_key" ON "Image"("projectId", "registry", "repository");

-- CreateIndex
CREATE UNIQUE INDEX "ImageVersion_imageId_digest_key" ON "ImageVersion"("imageId", "digest");

-- CreateIndex
CREATE INDEX "ImageTag_versionId_idx" ON "ImageTag"("versionId");

-- CreateIndex
CREATE INDEX "ImageVersionLayer_layerDigest_idx" ON "ImageVersionLayer"("layerDigest");

-- CreateIndex
CREATE UNIQUE INDEX "Service_activeRevisionId_key" ON "Service"("activeRevisionId");

-- CreateIndex
CREATE INDEX "Service_deletedAt_idx" ON "Service"("deletedAt");

-- CreateIndex
CREATE UNIQUE INDEX "Service_projectId_name_key" ON "Service"("projectId", "name");

-- CreateIndex
CREATE INDEX "Revision_serviceId_status_idx" ON "Revision"("serviceId", "status");

-- CreateIndex
CREATE UNIQUE INDEX "Revision_serviceId_number_key" ON "Revision"("serviceId", "number");

-- CreateIndex
CREATE INDEX "Replica_serviceId_state_idx" ON "Replica"("serviceId", "state");

-- CreateIndex
CREATE INDEX "Replica_nodeId_state_idx" ON "Replica"("nodeId", "state");

-- CreateIndex
CREATE INDEX "Replica_revisionId_idx" ON "Replica"("revisionId");

-- CreateIndex
CREATE UNIQUE INDEX "Node_name_key" ON "Node"("name");

-- CreateIndex
CREATE INDEX "Node_status_lastHeartbeatAt_idx" ON "Node"("status", "lastHeartbeatAt");

-- CreateIndex
CREATE UNIQUE INDEX "NodeJoinToken_tokenHash_key" ON "NodeJoinToken"("tokenHash");

-- CreateIndex
CREATE INDEX "Event_projectId_id_idx" ON "Event"("projectId", "id");

-- CreateIndex
CREATE INDEX "Event_serviceId_id_idx" ON "Event"("serviceId", "id");

-- CreateIndex
CREATE INDEX "Event_replicaId_id_idx" ON "Event"("replicaId", "id");

-- CreateIndex
CREATE INDEX "Event_nodeId_id_idx" ON "Event"("nodeId", "id");

-- AddForeignKey
ALTER TABLE "Membership" ADD CONSTRAINT "Membership_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Membership" ADD CONSTRAINT "Membership_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ApiToken" ADD CONSTRAINT "ApiToken_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ApiToken" ADD CONSTRAINT "ApiToken_createdById_fkey" FOREIGN KEY ("createdById") REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RegistryCredential" ADD CONSTRAINT "RegistryCredential_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "IdempotencyKey" ADD CONSTRAINT "IdempotencyKey_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Image" ADD CONSTRAINT "Image_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ImageVersion" ADD CONSTRAINT "ImageVersion_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ImageTag" ADD CONSTRAINT "ImageTag_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ImageTag" ADD CONSTRAINT "ImageTag_versionId_fkey" FOREIGN KEY ("versionId") REFERENCES "ImageVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ImageVersionLayer" ADD CONSTRAINT "ImageVersionLayer_versionId_fkey" FOREIGN KEY ("versionId") REFERENCES "ImageVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ImageVersionLayer" ADD CONSTRAINT "ImageVersionLayer_layerDigest_fkey" FOREIGN KEY ("layerDigest") REFERENCES "Layer"("digest") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Service" ADD CONSTRAINT "Service_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Service" ADD CONSTRAINT "Service_activeRevisionId_fkey" FOREIGN KEY ("activeRevisionId") REFERENCES "Revision"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Revision" ADD CONSTRAINT "Revision_serviceId_fkey" FOREIGN KEY ("serviceId") REFERENCES "Service"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Revision" ADD CONSTRAINT "Revision_imageVersionId_fkey" FOREIGN KEY ("imageVersionId") REFERENCES "ImageVersion"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Replica" ADD CONSTRAINT "Replica_serviceId_fkey" FOREIGN KEY ("serviceId") REFERENCES "Service"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Replica" ADD CONSTRAINT "Replica_revisionId_fkey" FOREIGN KEY ("revisionId") REFERENCES "Revision"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Replica" ADD CONSTRAINT "Replica_nodeId_fkey" FOREIGN KEY ("nodeId") REFERENCES "Node"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Event" ADD CONSTRAINT "Event_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Event" ADD CONSTRAINT "Event_serviceId_fkey" FOREIGN KEY ("serviceId") REFERENCES "Service"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Event" ADD CONSTRAINT "Event_nodeId_fkey" FOREIGN KEY ("nodeId") REFERENCES "Node"("id") ON DELETE SET NULL ON UPDATE CASCADE;
