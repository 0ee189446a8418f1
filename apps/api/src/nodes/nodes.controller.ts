import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Authenticated, CurrentActor, CurrentNode, JoinToken, NodeCredential, OperatorAdmin, type Actor } from '../auth/access.decorators';
import type { NodeCaller } from '../auth/principal';
import { SecretResponse } from '../common/idempotency/secret-response';
import { PageQuery, pageRequest } from '../common/pagination/pagination';
import { CreateJoinTokenInput, PullCredentialsInput, RegisterNodeInput } from './inputs/node.inputs';
import { NodesService } from './nodes.service';

@ApiTags('nodes')
@ApiBearerAuth()
@Controller('v1/nodes')
export class NodesController {
  constructor(private readonly nodes: NodesService) {}

  @Get()
  @Authenticated()
  @ApiOperation({ summary: 'Fleet summary (read-only, any authenticated caller)' })
  list(@Query() q: PageQuery) {
    return this.nodes.list(pageRequest(q));
  }

  @Post('join-tokens')
  @OperatorAdmin()
  @SecretResponse('token')
  @ApiOperation({
    summary: 'Create a node join token (bjt_…); shown once (an Idempotency-Key replay is a 409 IDEMPOTENT_REPLAY_SECRET)',
    description: 'Expires after ttlSeconds (default 24 h). With nodeName, only that node may join with it. Usable by several nodes until it expires or is revoked; each node gets its own credential when it joins.',
  })
  joinToken(@CurrentActor() a: Actor, @Body() body: CreateJoinTokenInput) {
    return this.nodes.createJoinToken(a, body);
  }

  @Get('join-tokens')
  @OperatorAdmin()
  @ApiOperation({ summary: 'Join tokens, newest first: id, prefix, node binding, expiry, last use, revocation (never the secret)' })
  listJoinTokens(@Query() q: PageQuery) {
    return this.nodes.listJoinTokens(pageRequest(q));
  }

  @Delete('join-tokens/:id')
  @OperatorAdmin()
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a join token at once (nodes that already joined keep their own credentials)' })
  revokeJoinToken(@CurrentActor() a: Actor, @Param('id') id: string) {
    return this.nodes.revokeJoinToken(a, id);
  }

  @Post('register')
  @JoinToken()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Agent registration: joins with a join token (bjt_…) or returns with its node credential (bnc_…)',
    description:
      'A join answers {nodeId, heartbeatIntervalMs, credential, network}: the node\'s own credential (bnc_…), shown once, which the agent uses from then on, ' +
      'and the pod network (mode, clusterCidr, the node\'s podCidr assigned at its first registration, wireguardPort). ' +
      'With `redis: issue|keep` (and BERTH_REDIS_NODE_ACL=on) the answer has `redis: {url, username, password?}`: the node\'s own Redis ACL user (password only when issued, shown once). ' +
      '401 when the credential was revoked; 403 when a bound join token or a node credential names another node; 409 when the cluster range has no free subnet left; 503 when Redis cannot create the user.',
  })
  register(@CurrentNode() caller: NodeCaller, @Body() body: RegisterNodeInput) {
    return this.nodes.register(body, caller);
  }

  @Post(':nodeId/pull-credentials')
  @NodeCredential()
  @HttpCode(200)
  @SecretResponse('password')
  @ApiOperation({
    summary: "An agent asks for the registry credentials of a replica's project (private images), at pull time",
    description: '200 {username, password}; 404 when the project has none for that registry (pull anonymously); 403 when the replica is not live on that node or the registry is not its image\'s.',
  })
  pullCredentials(@CurrentNode() caller: NodeCaller, @Param('nodeId') nodeId: string, @Body() body: PullCredentialsInput) {
    return this.nodes.pullCredentials(caller, nodeId, body);
  }

  @Post(':name/revoke')
  @OperatorAdmin()
  @HttpCode(200)
  @ApiOperation({
    summary: "Revoke a node's credential: its next call fails with 401, its Redis user is deleted (connections closed), it is drained; other nodes are not touched",
    description: 'Only a join token created after the revocation re-admits the node (it then gets a new credential; undrain it to give it replicas).',
  })
  revoke(@CurrentActor() a: Actor, @Param('name') name: string) {
    return this.nodes.revokeNode(a, name);
  }

  @Post(':name/drain')
  @OperatorAdmin()
  @HttpCode(200)
  drain(@CurrentActor() a: Actor, @Param('name') name: string) {
    return this.nodes.setDraining(a, name, true);
  }

  @Post(':name/undrain')
  @OperatorAdmin()
  @HttpCode(200)
  undrain(@CurrentActor() a: Actor, @Param('name') name: string) {
    return this.nodes.setDraining(a, name, false);
  }
}
