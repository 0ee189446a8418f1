import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  canTransition,
  DomainError,
  ErrorCode,
  NODE_TRANSITIONS,
  NodeStatus,
  REPLICA_ALLOCATED,
  ReplicaState,
} from '@berth/contracts';
import { parseReference } from '@berth/oci';
import { NodeAdminRepository, PodSubnetsExhaustedError, type NodeNetworkFacts } from '@berth/db';
import { allocatePodSubnet, podSubnetCount } from '@berth/scheduling';
import type { Actor } from '../auth/access.decorators';
import type { NodeCaller } from '../auth/principal';
import { AuditService } from '../common/audit/audit.service';
import { JOIN_TOKEN_PREFIX, NODE_CREDENTIAL_PREFIX, newOpaqueToken } from '../common/crypto/opaque-token';
import { assertId } from '../common/ids';
import { toPage } from '../common/pagination/pagination';
import { ReconcileQueue } from '../common/queue/reconcile.queue';
import { normaliseRegistry, RegistryCredentialsService } from '../images/registry-credentials.service';
import { API_CONFIG, type ApiConfig } from '../config';
import { CLOCK, type Clock } from '../tokens';
import { NodeRedisAcl } from './node-redis-acl';
import { DEFAULT_JOIN_TOKEN_TTL_SECONDS, type CreateJoinTokenInput, type PullCredentialsInput, type RegisterNodeInput } from './inputs/node.inputs';

export const HEARTBEAT_INTERVAL_MS = 2000;
/** Replicas that still hold a place on a node: their services must re-plan when it drains. */
const LIVE: readonly ReplicaState[] = [ReplicaState.PENDING, ...REPLICA_ALLOCATED];
/** Replicas an agent may still (re)pull an image for. */
const PULLABLE: readonly ReplicaState[] = REPLICA_ALLOCATED.filter((s) => s !== ReplicaState.STOPPING);

@Injectable()
export class NodesService {
  private readonly log = new Logger('nodes');

  constructor(
    private readonly nodes: NodeAdminRepository,
    private readonly audit: AuditService,
    private readonly credentials: RegistryCredentialsService,
    private readonly reconcile: ReconcileQueue,
    private readonly redisAcl: NodeRedisAcl,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(API_CONFIG) private readonly config: Pick<ApiConfig, 'BERTH_NETWORK_MODE' | 'BERTH_CLUSTER_CIDR' | 'BERTH_NODE_CIDR_MASK' | 'BERTH_WIREGUARD_PORT'>,
  ) {}

  async list(page: { limit: number; after?: string }) {
    const rows = await this.nodes.list({ take: page.limit + 1, afterId: page.after }, REPLICA_ALLOCATED);
    return toPage(rows, page.limit, (n) => n.id, (n) => ({
      id: n.id,
      name: n.name,
      status: n.status,
      address: n.address,
      labels: n.labels,
      capacity: { cpuMillis: n.cpuMillis, memoryMiB: n.memoryMiB, pids: n.pids },
      allocated: n.allocated,
      replicas: n.replicas,
      agentVersion: n.agentVersion,
      lastHeartbeatAt: n.lastHeartbeatAt,
      joinedAt: n.joinedAt,
      schedulable: n.schedulable,
      network: { podCidr: n.podCidr, underlay: n.underlayAddress ?? n.address, wireguardPublicKey: n.wireguardPublicKey },
      credential: n.credentialPrefix ? { prefix: n.credentialPrefix, issuedAt: n.credentialIssuedAt, revokedAt: n.credentialRevokedAt } : null,
    }));
  }

  /** A join token: 24 h unless `ttlSeconds` says otherwise, optionally bound to one node name. The secret is shown once. */
  async createJoinToken(actor: Actor, input: CreateJoinTokenInput) {
    const t = newOpaqueToken(JOIN_TOKEN_PREFIX);
    const ttlSeconds = input.ttlSeconds ?? (input.expiresInHours ? input.expiresInHours * 3600 : DEFAULT_JOIN_TOKEN_TTL_SECONDS);
    const createdAt = this.clock();
    const expiresAt = new Date(createdAt.getTime() + ttlSeconds * 1000);
    const row = await this.nodes.createJoinToken({
      tokenHash: t.hash,
      prefix: t.display,
      description: input.description ?? null,
      nodeName: input.nodeName ?? null,
      createdBy: actor.actor,
      createdAt,
      expiresAt,
    });
    await this.audit.record(actor, {
      type: 'node.join_token_created',
      message: `node join token ${row.prefix} created${row.nodeName ? ` for node ${row.nodeName}` : ''}, expires ${expiresAt.toISOString()}${input.description ? ` (${input.description})` : ''}`,
      data: { id: row.id, nodeName: row.nodeName, expiresAt },
    });
    return { ...joinTokenOut(row), token: t.token };
  }

  async listJoinTokens(page: { limit: number; after?: string }) {
    if (page.after) assertId(page.after, 'cursor');
    const rows = await this.nodes.listJoinTokens({ take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, joinTokenOut);
  }

  /** Revokes a join token at once; nodes that already joined with it keep their own credentials. */
  async revokeJoinToken(actor: Actor, id: string) {
    assertId(id, 'join token');
    const row = await this.nodes.findJoinTokenById(id);
    if (!row) throw new DomainError(ErrorCode.NotFound, `join token '${id}' not found`);
    if ((await this.nodes.revokeJoinToken(id, this.clock())).count === 1) {
      await this.audit.record(actor, { type: 'node.join_token_revoked', message: `node join token ${row.prefix || row.id} revoked`, data: { id } });
    }
  }

  /**
   * Revokes one node's credential: its next call to the api fails with 401, and the node is drained
   * (its replicas move elsewhere) because the control plane no longer trusts it. Other nodes are not
   * touched. Only a join token created after this re-admits the node.
   */
  async revokeNode(actor: Actor, name: string) {
    const node = await this.nodes.findByName(name);
    if (!node) throw new DomainError(ErrorCode.NotFound, `node '${name.slice(0, 100)}' not found`);
    const now = this.clock();
    const revoked = (await this.nodes.revokeCredential(node.id, now)).count === 1;
    // Its Redis user goes too (closing its connections): it can no longer take commands or report.
    await this.redisAcl.remove(node.id);
    if (revoked) {
      await this.audit.record(actor, {
        nodeId: node.id,
        type: 'node.revoked',
        level: 'WARN',
        message: `node ${name} revoked: its credential ${node.credentialPrefix ?? ''} no longer works; it needs a new join token to come back`,
        data: { credentialPrefix: node.credentialPrefix },
      });
    }
    let status = node.status;
    if (node.status === NodeStatus.READY) status = (await this.setDraining(actor, name, true)).status;
    const after = await this.nodes.findByName(name);
    return { name, status, credentialRevokedAt: after?.credentialRevokedAt ?? null };
  }

  async setDraining(actor: Actor, name: string, drain: boolean) {
    const node = await this.nodes.findByName(name);
    if (!node) throw new DomainError(ErrorCode.NotFound, `node '${name.slice(0, 100)}' not found`);
    if (!drain && node.credentialRevokedAt) {
      throw new DomainError(ErrorCode.Conflict, `node '${name}' is revoked: it must re-join with a new join token before it takes replicas again`, {
        revokedAt: node.credentialRevokedAt.toISOString(),
      });
    }
    const to = drain ? NodeStatus.DRAINING : NodeStatus.READY;
    if (node.status !== to) {
      if (!canTransition(NODE_TRANSITIONS, node.status, to)) {
        throw new DomainError(ErrorCode.Conflict, `node '${name}' is ${node.status}: cannot ${drain ? 'drain' : 'undrain'} it`, { status: node.status });
      }
      if (!(await this.nodes.setStatus(node.id, node.status, to))) {
        throw new DomainError(ErrorCode.Conflict, `node '${name}' changed status meanwhile; retry`);
      }
      await this.audit.record(actor, {
        nodeId: node.id,
        type: drain ? 'node.draining' : 'node.undrained',
        message: `node ${name} ${drain ? 'draining: its replicas will move' : 'accepts replicas again'}`,
        data: { from: node.status, to },
      });
      const serviceIds = await this.nodes.serviceIdsOnNode(node.id, LIVE);
      for (const id of serviceIds) {
        await this.reconcile.enqueue(id, drain ? 'node-drain' : 'node-undrain').catch((e) => this.log.warn(`enqueue ${id}: ${(e as Error).message}`));
      }
    }
    return { name: node.name, status: to };
  }

  /**
   * Private images: the decrypted credentials of a replica's project for its image's registry, for
   * the agent of the node the replica is placed on, at pull time. Nothing else is answered: another
   * node's replica, a stopped one, or a registry other than the image's is refused (403).
   */
  async pullCredentials(caller: NodeCaller, nodeId: string, input: PullCredentialsInput) {
    const refuse = (why: string) => new DomainError(ErrorCode.Forbidden, `no credentials for this request: ${why}`);
    if (caller.kind !== 'node' || caller.nodeId !== nodeId.toLowerCase()) {
      throw refuse(`the credential presented is not node ${nodeId.slice(0, 80)}'s`);
    }
    const replicaId = input.replicaId.toLowerCase();
    const replica = await this.nodes.replicaForPull(replicaId);
    if (!replica || replica.nodeId !== nodeId.toLowerCase()) throw refuse(`replica ${input.replicaId} is not placed on node ${nodeId.slice(0, 80)}`);
    if (!PULLABLE.includes(replica.state)) throw refuse(`replica ${input.replicaId} is ${replica.state}`);
    const imageRegistry = parseReference(replica.imageRef).registry;
    if (normaliseRegistry(input.registry) !== imageRegistry) throw refuse(`registry ${input.registry.slice(0, 100)} is not the registry of the replica's image (${imageRegistry})`);
    const creds = await this.credentials.lookup(replica.projectId, imageRegistry);
    if (!creds) throw new DomainError(ErrorCode.NotFound, `the project has no credentials for ${imageRegistry}: pull anonymously`);
    await this.audit.record(
      { actor: `node:${replica.nodeId}`, tokenId: null },
      {
        projectId: replica.projectId,
        nodeId: replica.nodeId,
        replicaId,
        type: 'registry_credential.used',
        message: `credentials for ${imageRegistry} (user ${creds.username}) handed to the agent pulling replica ${replicaId}`,
        data: { registry: imageRegistry, username: creds.username },
      },
    );
    return creds;
  }

  /**
   * An agent joins (join token) or returns (its node credential): upsert by name; a DOWN node comes
   * back READY through the transition table. A join hands out a new per-node credential (shown
   * once; the agent keeps it) and replaces any earlier one of that node.
   */
  async register(input: RegisterNodeInput, caller: NodeCaller) {
    const now = this.clock();
    const reg = {
      name: input.name,
      address: input.address,
      labels: input.labels ?? {},
      cpuMillis: input.capacity.cpuMillis,
      memoryMiB: input.capacity.memoryMiB,
      pids: input.capacity.pids,
      agentVersion: input.agentVersion,
    };
    const existing = await this.nodes.findByName(input.name);
    const system = { actor: `node:${input.name}`, tokenId: null };
    let grant: { token: string; hash: string; prefix: string; issuedAt: Date; joinTokenId: string } | undefined;
    if (caller.kind === 'node') {
      if (caller.nodeName !== input.name) {
        throw new DomainError(ErrorCode.Forbidden, `this is the credential of node '${caller.nodeName}': it cannot register '${input.name}'`);
      }
    } else {
      if (caller.nodeName && caller.nodeName !== input.name) {
        throw new DomainError(ErrorCode.Forbidden, `this join token is bound to node '${caller.nodeName}': it cannot register '${input.name}'`, {
          boundTo: caller.nodeName,
        });
      }
      if (existing?.credentialRevokedAt && caller.createdAt < existing.credentialRevokedAt) {
        throw new DomainError(
          ErrorCode.Unauthenticated,
          `node '${input.name}' was revoked at ${existing.credentialRevokedAt.toISOString()}; this join token is older: create a new one to re-admit it (berth nodes tokens create --node ${input.name})`,
        );
      }
      const t = newOpaqueToken(NODE_CREDENTIAL_PREFIX);
      grant = { token: t.token, hash: t.hash, prefix: t.display, issuedAt: now, joinTokenId: caller.tokenId };
      await this.nodes.markJoinTokenUsed(caller.tokenId, input.name, now);
    }
    const range = { clusterCidr: this.config.BERTH_CLUSTER_CIDR, nodeMask: this.config.BERTH_NODE_CIDR_MASK };
    const net: NodeNetworkFacts = {
      underlayAddress: input.underlay ?? null,
      // An agent learns the mode from this answer and reports its key in a second registration: until
      // then the node keeps the key it had, so its peers do not drop it at every agent restart.
      wireguardPublicKey: this.config.BERTH_NETWORK_MODE === 'wireguard' ? (input.wireguardPublicKey ?? existing?.wireguardPublicKey ?? null) : null,
      schedulable: input.schedulable ?? true,
      podCidr: input.podNetwork === false ? 'none' : { choose: (taken) => allocatePodSubnet(range, taken) },
    };
    // The node's own Redis user: a join always gets a new password (unless the agent uses no user).
    const want = input.redis ?? 'none';
    const answer = async (node: { id: string; podCidr: string | null }) => {
      const redis = await this.redisAcl.grant(node.id, grant ? null : (existing?.redisPasswordHash ?? null), grant && want !== 'none' ? 'issue' : want);
      return {
        nodeId: node.id,
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        ...(grant ? { credential: grant.token } : {}),
        ...(redis ? { redis } : {}),
        network: {
          mode: this.config.BERTH_NETWORK_MODE,
          clusterCidr: this.config.BERTH_CLUSTER_CIDR,
          podCidr: node.podCidr,
          wireguardPort: this.config.BERTH_WIREGUARD_PORT,
        },
      };
    };
    const exhausted = async (e: unknown): Promise<never> => {
      if (!(e instanceof PodSubnetsExhaustedError)) throw e;
      const message = `node ${input.name} cannot join the pod network: all ${podSubnetCount(range)} /${range.nodeMask} subnets of ${range.clusterCidr} are held by nodes (delete nodes that are gone, or use a larger BERTH_CLUSTER_CIDR / BERTH_NODE_CIDR_MASK)`;
      await this.audit.record(system, { nodeId: existing?.id ?? null, type: 'node.pod_subnets_exhausted', level: 'ERROR', message, data: { clusterCidr: range.clusterCidr, nodeMask: range.nodeMask } });
      throw new DomainError(ErrorCode.Conflict, message, { clusterCidr: range.clusterCidr, nodeMask: range.nodeMask });
    };
    if (!existing) {
      const node = await this.nodes.create(reg, now, grant, net).catch(exhausted);
      await this.audit.record(system, {
        nodeId: node.id,
        type: 'node.registered',
        message: `node ${node.name} joined at ${node.address} (credential ${grant?.prefix ?? '?'})${node.podCidr ? `, pod subnet ${node.podCidr}` : ''}`,
        data: { capacity: input.capacity, joinTokenId: grant?.joinTokenId ?? null, credentialPrefix: grant?.prefix ?? null, podCidr: node.podCidr, schedulable: node.schedulable },
      });
      return answer(node);
    }
    let status: NodeStatus | undefined;
    if (existing.status === NodeStatus.DOWN && canTransition(NODE_TRANSITIONS, existing.status, NodeStatus.READY)) status = NodeStatus.READY;
    const node = await this.nodes.update(existing.id, reg, now, status, grant, net).catch(exhausted);
    await this.audit.record(system, {
      nodeId: node.id,
      type: grant ? 'node.rejoined' : 'node.reregistered',
      message: grant
        ? `node ${node.name} joined again with a join token: new credential ${grant.prefix}${existing.credentialPrefix ? ` replaces ${existing.credentialPrefix}` : ''}${existing.credentialRevokedAt ? ' (revocation lifted; undrain it to give it replicas)' : ''}`
        : `node ${node.name} registered again${status ? ' (was DOWN, now READY)' : ''}`,
      data: { from: existing.status, to: node.status, podCidr: node.podCidr, ...(grant ? { joinTokenId: grant.joinTokenId, credentialPrefix: grant.prefix } : {}) },
    });
    return answer(node);
  }
}

const joinTokenOut = (r: {
  id: string;
  prefix: string;
  description: string | null;
  nodeName: string | null;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  usedAt: Date | null;
  usedBy: string | null;
  useCount: number;
}) => ({
  id: r.id,
  prefix: r.prefix,
  description: r.description,
  nodeName: r.nodeName,
  createdBy: r.createdBy,
  createdAt: r.createdAt,
  expiresAt: r.expiresAt,
  revokedAt: r.revokedAt,
  usedAt: r.usedAt,
  usedBy: r.usedBy,
  useCount: r.useCount,
});
