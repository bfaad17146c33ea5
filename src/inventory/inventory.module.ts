import { Module } from '@nestjs/common';
import { ReconciliationJob } from './reconciliation.job';
import { SlotLedger } from './slot-ledger';

/** The slot ledger, the one home of the match slot counters, and the job that checks them. */
@Module({ providers: [SlotLedger, ReconciliationJob], exports: [SlotLedger] })
export class InventoryModule {}
