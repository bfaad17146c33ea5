import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Caller } from '../auth/caller';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { CommitOutcomes } from '../database/commit-outcome';
import { type KeysetPosition, type Page, toPage } from '../database/sql';
import { TransactionRunner } from '../database/transaction-runner';
import { InvalidInputError, OutcomeUnknownError, WaitlistEntryNotFoundError } from '../errors/domain-errors';
import type { IdempotentWrite } from '../idempotency/idempotent-write';
import { SlotLedger } from '../inventory/slot-ledger';
import type { WaitlistStatus } from './waitlist-entry.entity';
import type { WaitlistEntry } from './waitlist-entry';
import { WaitlistRepository } from './waitlist.repository';

export interface WaitlistListQuery {
  matchId?: string;
  status?: WaitlistStatus;
  before?: KeysetPosition;
  limit: number;
}

/**
 * Waiting for slots of a sold-out match. The line and its offers are the slot ledger's: an
 * entry is offered slots in the transaction that frees them, as a hold in the customer's name,
 * confirmed like any hold.
 */
@Injectable()
export class WaitlistService {
  private readonly maxSlots: number;

  constructor(
    private readonly entries: WaitlistRepository,
    private readonly ledger: SlotLedger,
    private readonly transactions: TransactionRunner,
    private readonly commitOutcomes: CommitOutcomes,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'booking'>,
  ) {
    this.maxSlots = config.booking.maxSlotsPerBooking;
  }

  /** A retry after a failed COMMIT must not join twice, so the entry is looked up by its id (made here for that) before answering. */
  async join(caller: Caller, matchId: string, slots: number, idempotency?: IdempotentWrite): Promise<WaitlistEntry> {
    if (slots > this.maxSlots) throw new InvalidInputError('slots', `slots must not be greater than ${this.maxSlots}`);
    const id = randomUUID();
    return this.commitOutcomes.resolve(
      'join-waitlist',
      () =>
        this.transactions.run(
          'join-waitlist',
          (queryRunner) => this.ledger.joinWaitlist(queryRunner, { id, matchId, customerId: caller.customerId, slots }),
          { hooks: idempotency },
        ),
      () => this.entries.findById(id),
      (cause) => new OutcomeUnknownError('waitlist entry', id, { cause }),
    );
  }

  /** A customer sees only their own entries; someone else's answers "not found". */
  async get(caller: Caller, entryId: string): Promise<WaitlistEntry> {
    const entry = await this.entries.findById(entryId);
    if (!entry || (!caller.isAdmin && entry.customerId !== caller.customerId)) throw new WaitlistEntryNotFoundError(entryId);
    return entry;
  }

  async list(caller: Caller, query: WaitlistListQuery): Promise<Page<WaitlistEntry>> {
    const rows = await this.entries.list({ ...query, ...(caller.isAdmin ? {} : { customerId: caller.customerId }), limit: query.limit + 1 });
    return toPage(rows, query.limit, (row) => row.entry);
  }

  /** Leaves the line, or declines the offer; an entry already closed is left as it is (leaving twice answers the same). */
  async leave(caller: Caller, entryId: string): Promise<void> {
    const entry = await this.get(caller, entryId);
    if (entry.status !== 'waiting' && entry.status !== 'offered') return;
    await this.transactions.run('leave-waitlist', (queryRunner) => this.ledger.leaveWaitlist(queryRunner, entry));
  }
}
