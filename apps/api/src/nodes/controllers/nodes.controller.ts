import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Authenticated, CurrentActor, JoinToken, OperatorAdmin, type Actor } from '../../auth/access.decorators';
import { SecretResponse } from '../../common/idempotency/secret-response';
import { PageQuery, pageRequest } from '../../common/pagination/pagination';
import { CreateJoinTokenInput, PullCredentialsInput, RegisterNodeInput } from '../inputs/node.inputs';
import { NodesService } from '../services/nodes.service';

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
  @ApiOperation({ summary: 'Create a node join token (bjt_…); shown once (an Idempotency-Key replay is a 409 IDEMPOTENT_REPLAY_SECRET)' })
  joinToken(@CurrentActor() a: Actor, @Body() body: CreateJoinTokenInput) {
    return this.nodes.createJoinToken(a, body);
  }

  @Post('register')
  @JoinToken()
  @HttpCode(200)
  @ApiOperation({ summary: 'Agent registration, authenticated by a join token' })
  register(@Body() body: RegisterNodeInput) {
    return this.nodes.register(body);
  }

  @Post(':nodeId/pull-credentials')
  @JoinToken()
  @HttpCode(200)
  @SecretResponse('password')
  @ApiOperation({
    summary: "An agent asks for the registry credentials of a replica's project (private images), at pull time",
    description: '200 {username, password}; 404 when the project has none for that registry (pull anonymously); 403 when the replica is not live on that node or the registry is not its image\'s.',
  })
  pullCredentials(@Param('nodeId') nodeId: string, @Body() body: PullCredentialsInput) {
    return this.nodes.pullCredentials(nodeId, body);
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
