import { randomBytes } from 'node:crypto';
import { signAccessToken } from '../src/auth/jwt';

/** Long enough for the longest run; tokens are made fresh for every run. */
const TOKEN_LIFETIME_SECONDS = 4 * 3600;
const CREATE_CONCURRENCY = 16;

/** A random AUTH_JWT_SECRET for one run: 48 characters, more than the 32 the service requires. */
export function randomJwtSecret(): string {
  return randomBytes(36).toString('base64url');
}

export function bookingPath(matchId: string): string {
  return `/api/v1/matches/${matchId}/bookings`;
}

/** The service's REST API as far as the bench needs it: tokens and match creation. */
export class BookingApi {
  readonly customerTokens: readonly string[];
  private readonly adminToken: string;
  private created = 0;

  constructor(
    private readonly baseUrl: string,
    secret: string,
    customers: number,
  ) {
    this.adminToken = signAccessToken({ sub: 'bench-admin', admin: true }, secret, TOKEN_LIFETIME_SECONDS);
    this.customerTokens = Array.from({ length: customers }, (_, index) =>
      signAccessToken({ sub: `bench-customer-${index + 1}`, admin: false }, secret, TOKEN_LIFETIME_SECONDS),
    );
  }

  /** POST /api/v1/matches as admin; returns the new match's id. */
  async createMatch(title: string, capacity: number): Promise<string> {
    this.created += 1;
    const startsAt = new Date(Date.now() + (30 * 24 * 3600 + this.created) * 1000).toISOString();
    const response = await fetch(`${this.baseUrl}/api/v1/matches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title, startsAt, capacity }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status !== 201) throw new Error(`Creating match "${title}" answered ${response.status}: ${text.slice(0, 500)}`);
    const body = JSON.parse(text) as { id?: unknown };
    if (typeof body.id !== 'string') throw new Error(`Creating match "${title}" returned no id: ${text.slice(0, 500)}`);
    return body.id;
  }

  /** Creates `count` matches, a few requests at a time. */
  async createMatches(count: number, titlePrefix: string, capacity: number): Promise<string[]> {
    const ids: string[] = new Array<string>(count);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const index = next++;
        ids[index] = await this.createMatch(`${titlePrefix} ${index + 1}`, capacity);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CREATE_CONCURRENCY, count) }, worker));
    return ids;
  }
}
