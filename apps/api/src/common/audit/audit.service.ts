import { Injectable } from '@nestjs/common';
import { EventRepository, type NewEvent } from '@berth/db';
import type { Actor } from '../../auth/access.decorators';

/** Writes the append-only audit trail: every mutation says who did what, when, from which token. */
@Injectable()
export class AuditService {
  constructor(private readonly events: EventRepository) {}

  record(actor: Actor, e: Omit<NewEvent, 'actor' | 'tokenId'>) {
    return this.events.append({ ...e, actor: actor.actor, tokenId: actor.tokenId });
  }
}
