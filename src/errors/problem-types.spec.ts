import { readFileSync } from 'node:fs';
import { readmeProblemTable, README_PATH, renderProblemTable } from '../../scripts/problem-table';
import { RateLimitedError } from '../rate-limit/rate-limited.error';
import * as domainErrors from './domain-errors';
import { answerFor, problemTypeOf } from './problem';
import { PROBLEM_FIELDS, PROBLEM_TYPES } from './problem-types';
import { RequestValidationError } from './request-validation';

describe('problem types', () => {
  it('should keep the README problem table as problem-types.ts generates it (npm run docs:problems)', () => {
    expect(readmeProblemTable(readFileSync(README_PATH, 'utf8'))).toBe(renderProblemTable());
  });

  it('should give every domain error class a problem type, so none becomes a 500', () => {
    const classes = (Object.values(domainErrors) as Array<{ name: string; prototype: unknown }>).filter(
      (value) => typeof value === 'function' && value.prototype instanceof domainErrors.DomainError,
    );
    expect(classes.length).toBeGreaterThanOrEqual(15);
    const undescribed = classes.filter((errorClass) => problemTypeOf(Object.create(errorClass.prototype as object)) === undefined).map((c) => c.name);
    expect(undescribed).toEqual([]);
  });

  it('should answer with the status, title and members the table gives', () => {
    const insufficient = answerFor(new domainErrors.InsufficientSlotsError('m-1', 3, 2));
    expect(insufficient).toEqual({
      problem: {
        type: '/problems/insufficient-slots',
        title: 'Not enough slots left',
        status: 409,
        detail: 'Match m-1 has 2 slot(s) available; 3 requested',
        matchId: 'm-1',
        requestedSlots: 3,
        availableSlots: 2,
      },
      headers: {},
    });
    // A subclass is answered as its superclass; a fixed detail hides the internal message.
    const commit = answerFor(new domainErrors.CommitOutcomeUnknownError('connection reset during COMMIT of "book-slots"'));
    expect(commit?.problem).toMatchObject({ type: '/problems/database-unavailable', status: 503, retryAfterSeconds: 2 });
    expect(commit?.problem.detail).not.toContain('COMMIT');
    expect(commit?.headers).toEqual({ 'Retry-After': '2' });
    expect(answerFor(new RateLimitedError('ip', 10, 60_000, 7))).toMatchObject({ problem: { status: 429, limit: 'ip', retryAfterSeconds: 7 }, headers: { 'Retry-After': '7' } });
    expect(answerFor(new RequestValidationError([{ field: 'slots', message: 'slots is required' }]))?.problem).toMatchObject({ status: 400, errors: [{ field: 'slots' }] });
    expect(answerFor(new Error('plain'))).toBeUndefined();
  });

  it('should name only known extension members, each used by some problem type', () => {
    const used = new Set(Object.values(PROBLEM_TYPES).flatMap((type) => [...type.fields]));
    expect([...used].filter((field) => !(field in PROBLEM_FIELDS))).toEqual([]);
    expect(Object.keys(PROBLEM_FIELDS).filter((field) => !used.has(field as keyof typeof PROBLEM_FIELDS) && field !== 'retryAfterSeconds')).toEqual([]);
  });
});
