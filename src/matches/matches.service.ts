import { Injectable } from '@nestjs/common';
import { TransactionRunner } from '../database/transaction-runner';
import { type KeysetPosition, type Page, toPage } from '../database/sql';
import { MatchNotFoundError } from '../errors/domain-errors';
import { SlotLedger } from '../inventory/slot-ledger';
import { type MatchView, toMatchView } from './match';
import { type MatchChanges, MatchesRepository } from './matches.repository';

export interface MatchListQuery {
  from?: Date;
  to?: Date;
  after?: KeysetPosition;
  limit: number;
}

@Injectable()
export class MatchesService {
  constructor(
    private readonly matches: MatchesRepository,
    private readonly transactions: TransactionRunner,
    private readonly ledger: SlotLedger,
  ) {}

  async create(input: { title: string; startsAt: Date; capacity: number; maxSlotsPerCustomer: number | null }): Promise<MatchView> {
    return toMatchView(await this.matches.insert(input));
  }

  async get(id: string): Promise<MatchView> {
    const match = await this.matches.findById(id);
    if (!match) throw new MatchNotFoundError(id);
    return toMatchView(match);
  }

  async list(query: MatchListQuery): Promise<Page<MatchView>> {
    const rows = await this.matches.list({ ...query, limit: query.limit + 1 });
    return toPage(rows, query.limit, (row) => toMatchView(row.match));
  }

  /** A capacity change locks the match row, so it cannot race a booking into overbooking. */
  async update(id: string, changes: MatchChanges): Promise<MatchView> {
    return this.transactions.run('update-match', async (queryRunner) => {
      const match = await this.ledger.changeMatch(
        queryRunner,
        id,
        changes.capacity,
        () => this.matches.update(queryRunner, id, changes),
        async () => (await this.matches.findById(id, queryRunner))!,
      );
      return toMatchView(match);
    });
  }
}
