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
import { NodeAdminRepository } from '../../db';
import type { Actor } from '../../auth/access.decorators';
import { AuditService } from '../../common/audit/audit.service';
import { JOIN_TOKEN_PREFIX, newOpaqueToken } from '../../common/crypto/opaque-token';
import { toPage } from '../../common/pagination/pagination';
import { ReconcileQueue } from '../../common/queue/reconcile.queue';
import { normaliseRegistry, RegistryCredentialsService } from '../../images/services/registry-credentials.service';
import { CLOCK, type Clock } from '../../tokens';
import type { CreateJoinTokenInput, PullCredentialsInput, RegisterNodeInput } from '../inputs/node.inputs';

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
    @Inject(CLOCK) private readonly clock: Clock,
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
    }));
  }

  async createJoinToken(actor: Actor, input: CreateJoinTokenInput) {
    const t = newOpaqueToken(JOIN_TOKEN_PREFIX);
    const expiresAt = input.expiresInHours ? new Date(this.clock().getTime() + input.expiresInHours * 3_600_000) : null;
    const row = await this.nodes.createJoinToken({ tokenHash: t.hash, description: input.description ?? null, createdBy: actor.actor, expiresAt });
    await this.audit.record(actor, { type: 'node.join_token_created', message: `node join token created${input.description ? ` (${input.description})` : ''}`, data: { id: row.id } });
    return { id: row.id, token: t.token, description: row.description, expiresAt: row.expiresAt, createdAt: row.createdAt };
  }

  async setDraining(actor: Actor, name: string, drain: boolean) {
    const node = await this.nodes.findByName(name);
    if (!node) throw new DomainError(ErrorCode.NotFound, `node '${name.slice(0, 100)}' not found`);
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
  async pullCredentials(nodeId: string, input: PullCredentialsInput) {
    const refuse = (why: string) => new DomainError(ErrorCode.Forbidden, `no credentials for this request: ${why}`);
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

  /** An agent joins (or returns): upsert by name; a DOWN node comes back READY through the transition table. */
  async register(input: RegisterNodeInput) {
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
    if (!existing) {
      const node = await this.nodes.create(reg, now);
      await this.audit.record(system, { nodeId: node.id, type: 'node.registered', message: `node ${node.name} joined at ${node.address}`, data: { capacity: input.capacity } });
      return { nodeId: node.id, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS };
    }
    let status: NodeStatus | undefined;
    if (existing.status === NodeStatus.DOWN && canTransition(NODE_TRANSITIONS, existing.status, NodeStatus.READY)) status = NodeStatus.READY;
    const node = await this.nodes.update(existing.id, reg, now, status);
    await this.audit.record(system, {
      nodeId: node.id,
      type: 'node.reregistered',
      message: `node ${node.name} registered again${status ? ' (was DOWN, now READY)' : ''}`,
      data: { from: existing.status, to: node.status },
    });
    return { nodeId: node.id, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS };
  }
}
