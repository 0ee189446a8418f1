import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { Node, NodeJoinToken, NodeStatus, ReplicaState } from '../generated/prisma/client';
import { pageQuery, type PageArgs } from './project.repository';

export interface NodeRegistration {
  name: string;
  address: string;
  labels: Record<string, string>;
  cpuMillis: number;
  memoryMiB: number;
  pids: number;
  agentVersion: string;
}

/** What a node reports about its place in the pod network at each registration. */
export interface NodeNetworkFacts {
  /** Address other nodes reach it at (null: its `address`). */
  underlayAddress: string | null;
  wireguardPublicKey: string | null;
  schedulable: boolean;
  /**
   * Its pod subnet: `none` (it asked for none, e.g. hollow: any subnet it held is released) or
   * `choose` to keep the one it has, else pick one out of those no node holds (null: none left).
   */
  podCidr: 'none' | { choose: (taken: string[]) => string | null };
}

/** Every node subnet of the pod range is taken. */
export class PodSubnetsExhaustedError extends Error {
  readonly code = 'POD_SUBNETS_EXHAUSTED';
  constructor(readonly taken: number) {
    super(`no free pod subnet: all ${taken} are held by nodes`);
    this.name = 'PodSubnetsExhaustedError';
  }
}

/** Serialises subnet choices cluster-wide (pg_advisory_xact_lock key). */
const POD_CIDR_LOCK = 0x62657274; // "bert"

/** A per-node credential handed out at join: only its hash is stored. */
export interface NodeCredentialGrant {
  hash: string;
  prefix: string;
  issuedAt: Date;
  joinTokenId: string;
}

const credentialData = (c?: NodeCredentialGrant) =>
  c ? { credentialHash: c.hash, credentialPrefix: c.prefix, credentialIssuedAt: c.issuedAt, credentialRevokedAt: null, joinTokenId: c.joinTokenId } : {};

const netData = (n?: NodeNetworkFacts) =>
  n ? { underlayAddress: n.underlayAddress, wireguardPublicKey: n.wireguardPublicKey, schedulable: n.schedulable } : {};

/** The api's view of the fleet: listing, join tokens, registration and drain. Heartbeats belong to the scheduler. */
@Injectable()
@MapsPrismaErrors('node')
export class NodeAdminRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Nodes with the resources held by their replicas in `allocatedStates`. */
  async list(page: PageArgs, allocatedStates: readonly ReplicaState[]) {
    const nodes = await this.prisma.client.node.findMany({ orderBy: [{ name: 'asc' }, { id: 'asc' }], ...pageQuery(page) });
    if (nodes.length === 0) return [];
    const replicas = await this.prisma.client.replica.findMany({
      where: { nodeId: { in: nodes.map((n) => n.id) }, state: { in: [...allocatedStates] } },
      select: { nodeId: true, service: { select: { cpuMillis: true, memoryMiB: true, pidsLimit: true } } },
    });
    return nodes.map((n) => {
      const mine = replicas.filter((r) => r.nodeId === n.id);
      return {
        ...n,
        replicas: mine.length,
        allocated: {
          cpuMillis: mine.reduce((s, r) => s + r.service.cpuMillis, 0),
          memoryMiB: mine.reduce((s, r) => s + r.service.memoryMiB, 0),
          pids: mine.reduce((s, r) => s + r.service.pidsLimit, 0),
        },
      };
    });
  }

  findByName(name: string): Promise<Node | null> {
    return this.prisma.client.node.findUnique({ where: { name } });
  }

  createJoinToken(data: {
    tokenHash: string;
    prefix: string;
    description?: string | null;
    nodeName?: string | null;
    createdBy: string;
    createdAt: Date;
    expiresAt: Date | null;
  }): Promise<NodeJoinToken> {
    return this.prisma.client.nodeJoinToken.create({ data });
  }

  findJoinToken(tokenHash: string): Promise<NodeJoinToken | null> {
    return this.prisma.client.nodeJoinToken.findUnique({ where: { tokenHash } });
  }

  findJoinTokenById(id: string): Promise<NodeJoinToken | null> {
    return this.prisma.client.nodeJoinToken.findUnique({ where: { id } });
  }

  /** Newest first. */
  listJoinTokens(page: PageArgs): Promise<NodeJoinToken[]> {
    return this.prisma.client.nodeJoinToken.findMany({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], ...pageQuery(page) });
  }

  /** Revokes a join token once; 0 when it is unknown or already revoked. */
  revokeJoinToken(id: string, at: Date): Promise<{ count: number }> {
    return this.prisma.client.nodeJoinToken.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } });
  }

  markJoinTokenUsed(id: string, nodeName: string, at: Date): Promise<NodeJoinToken> {
    return this.prisma.client.nodeJoinToken.update({ where: { id }, data: { usedAt: at, usedBy: nodeName, useCount: { increment: 1 } } });
  }

  /** The node a per-node credential belongs to (revoked or not: the caller decides). */
  findByCredentialHash(credentialHash: string): Promise<Node | null> {
    return this.prisma.client.node.findUnique({ where: { credentialHash } });
  }

  /**
   * Stops a node's credential working; 0 when it has none or it is already revoked. Its Redis
   * password hash goes too, so the api never re-creates the node's Redis user.
   */
  revokeCredential(id: string, at: Date): Promise<{ count: number }> {
    return this.prisma.client.node.updateMany({
      where: { id, credentialHash: { not: null }, credentialRevokedAt: null },
      data: { credentialRevokedAt: at, redisPasswordHash: null },
    });
  }

  /** sha256 (hex) of the node's Redis ACL password, or null when it has none (revoked, ACL off). */
  async setRedisPasswordHash(id: string, hash: string | null): Promise<void> {
    await this.prisma.client.node.update({ where: { id }, data: { redisPasswordHash: hash } });
  }

  /**
   * The nodes whose Redis user should exist (a password hash, not revoked) and the revoked ones
   * (their user must not exist).
   */
  async redisUsers(): Promise<{ users: { id: string; redisPasswordHash: string }[]; revoked: string[] }> {
    const rows = await this.prisma.client.node.findMany({
      where: { OR: [{ redisPasswordHash: { not: null } }, { credentialRevokedAt: { not: null } }] },
      select: { id: true, redisPasswordHash: true, credentialRevokedAt: true },
      orderBy: { id: 'asc' },
    });
    const users: { id: string; redisPasswordHash: string }[] = [];
    const revoked: string[] = [];
    for (const r of rows) {
      if (r.credentialRevokedAt) revoked.push(r.id);
      else if (r.redisPasswordHash) users.push({ id: r.id, redisPasswordHash: r.redisPasswordHash });
    }
    return { users, revoked };
  }

  /** Moves a node from `from` to `to` only if it is still in `from` (the caller checked the transition table). */
  async setStatus(id: string, from: NodeStatus, to: NodeStatus): Promise<boolean> {
    const r = await this.prisma.client.node.updateMany({ where: { id, status: from }, data: { status: to } });
    return r.count === 1;
  }

  /**
   * A new node; with `net.podCidr.choose`, its subnet is chosen and written in the same transaction,
   * under a cluster-wide lock, so two nodes joining at once never get the same one, and a join that
   * finds none left creates nothing (PodSubnetsExhaustedError).
   */
  async create(reg: NodeRegistration, now: Date, credential?: NodeCredentialGrant, net?: NodeNetworkFacts): Promise<Node> {
    const data = { ...reg, status: 'READY' as const, lastHeartbeatAt: now, ...credentialData(credential), ...netData(net) };
    if (!net || net.podCidr === 'none') return this.prisma.client.node.create({ data });
    const choose = net.podCidr.choose;
    return this.prisma.client.$transaction(async (tx) => {
      const podCidr = await this.choosePodCidr(tx, choose);
      return tx.node.create({ data: { ...data, podCidr } });
    });
  }

  private async choosePodCidr(tx: Pick<PrismaService['client'], '$queryRaw' | 'node'>, choose: (taken: string[]) => string | null): Promise<string> {
    await tx.$queryRaw`SELECT pg_advisory_xact_lock(${POD_CIDR_LOCK}::bigint)::text`;
    const rows = await tx.node.findMany({ where: { podCidr: { not: null } }, select: { podCidr: true } });
    const taken = rows.map((r) => r.podCidr!);
    const podCidr = choose(taken);
    if (!podCidr) throw new PodSubnetsExhaustedError(taken.length);
    return podCidr;
  }

  /**
   * Refreshes a returning node's facts; `status` is set only when the caller validated the
   * transition. With `credential` (a join), the node's credential is replaced (the old one stops
   * working) and a revocation is lifted.
   */
  async update(id: string, reg: NodeRegistration, now: Date, status?: NodeStatus, credential?: NodeCredentialGrant, net?: NodeNetworkFacts): Promise<Node> {
    const data = { ...reg, lastHeartbeatAt: now, ...(status ? { status } : {}), ...credentialData(credential), ...netData(net) };
    if (!net) return this.prisma.client.node.update({ where: { id }, data });
    if (net.podCidr === 'none') return this.prisma.client.node.update({ where: { id }, data: { ...data, podCidr: null } });
    const choose = net.podCidr.choose;
    return this.prisma.client.$transaction(async (tx) => {
      // A node keeps its subnet for life (agent restarts, re-joins); only one without picks one.
      const current = await tx.node.findUnique({ where: { id }, select: { podCidr: true } });
      const podCidr = current?.podCidr ?? (await this.choosePodCidr(tx, choose));
      return tx.node.update({ where: { id }, data: { ...data, podCidr } });
    });
  }

  /** Services with replicas on the node in one of `states` (they need a reconcile when the node changes). */
  async serviceIdsOnNode(nodeId: string, states: readonly ReplicaState[]): Promise<string[]> {
    const rows = await this.prisma.client.replica.findMany({
      where: { nodeId, state: { in: [...states] } },
      select: { serviceId: true },
      distinct: ['serviceId'],
    });
    return rows.map((r) => r.serviceId);
  }

  /** What a pull-credentials request needs to know about a replica: where it is, its state, project and image. */
  async replicaForPull(replicaId: string): Promise<{ nodeId: string | null; state: ReplicaState; projectId: string; imageRef: string } | null> {
    const r = await this.prisma.client.replica.findUnique({
      where: { id: replicaId },
      select: { nodeId: true, state: true, service: { select: { projectId: true } }, revision: { select: { imageRef: true } } },
    });
    return r ? { nodeId: r.nodeId, state: r.state, projectId: r.service.projectId, imageRef: r.revision.imageRef } : null;
  }
}
