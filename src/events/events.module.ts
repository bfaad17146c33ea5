import { Module } from '@nestjs/common';
import { EventPurger } from './event-purger';
import { EventsController } from './events.controller';
import { EventsRepository } from './events.repository';

/**
 * The outbox's feed and retention. Events are written by the statements that make the changes
 * (event-sql.ts, used by the slot ledger and the matches repository).
 */
@Module({ controllers: [EventsController], providers: [EventsRepository, EventPurger] })
export class EventsModule {}
