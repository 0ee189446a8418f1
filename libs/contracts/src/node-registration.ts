/**
 * The agent's registration (POST /v1/nodes/register): what the api answers, parsed by the agent.
 * The request body is validated by the api's input class (apps/api/src/nodes/inputs).
 */
import { z } from 'zod';
import { NodeRedisAccessSchema } from './node-redis';
import { Ipv4CidrSchema, NetworkModeSchema } from './queues';
import { ConfigContractError, zodIssues } from './service-config';

/** The pod network as the control plane set it up for this node. */
export const NodeNetworkAssignmentSchema = z.strictObject({
  mode: NetworkModeSchema,
  /** The whole pod range (BERTH_CLUSTER_CIDR). */
  clusterCidr: Ipv4CidrSchema,
  /** This node's pod subnet (its CNI bridge's range, gateway .1); null when it asked for none (hollow). */
  podCidr: Ipv4CidrSchema.nullable(),
  /** UDP port every node's WireGuard interface listens on (wireguard mode). */
  wireguardPort: z.int().min(1).max(65535),
});
export type NodeNetworkAssignment = z.infer<typeof NodeNetworkAssignmentSchema>;

export const NodeRegistrationResponseSchema = z.strictObject({
  nodeId: z.string().min(1),
  heartbeatIntervalMs: z.int().min(1),
  /** The node's own credential (bnc_…), handed out when it joins with a join token (shown once). */
  credential: z.string().min(1).optional(),
  /** The node's own Redis user (password only when one was issued). */
  redis: NodeRedisAccessSchema.optional(),
  network: NodeNetworkAssignmentSchema,
});
export type NodeRegistrationResponse = z.infer<typeof NodeRegistrationResponseSchema>;

export function parseNodeRegistrationResponse(data: unknown): NodeRegistrationResponse {
  const r = NodeRegistrationResponseSchema.safeParse(data);
  if (!r.success) throw new ConfigContractError('node registration response', zodIssues(r.error));
  return r.data;
}
