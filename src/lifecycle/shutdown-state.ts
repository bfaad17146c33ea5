import { Injectable } from '@nestjs/common';

/** Set once when shutdown begins; readiness reads it to turn 503 at once. */
@Injectable()
export class ShutdownState {
  private shuttingDownSince: Date | undefined;

  begin(): void {
    this.shuttingDownSince ??= new Date();
  }

  get isShuttingDown(): boolean {
    return this.shuttingDownSince !== undefined;
  }
}
