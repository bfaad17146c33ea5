import 'reflect-metadata';
import type { ArgumentMetadata } from '@nestjs/common';
import { CreateMatchDto } from '../matches/dto/match.dto';
import { createValidationPipe, RequestValidationError } from './request-validation';

/** What a client reads when its input is refused: one clear message per field. */
describe('request validation messages', () => {
  const metadata: ArgumentMetadata = { type: 'body', metatype: CreateMatchDto };
  const errorsFor = async (body: unknown) => {
    const failure = await createValidationPipe()
      .transform(body, metadata)
      .then(() => undefined, (error: unknown) => error);
    if (!(failure instanceof RequestValidationError)) throw new Error('expected a RequestValidationError');
    return failure.errors;
  };
  const valid = { title: 'Final', startsAt: '2026-12-01T18:30:00Z', capacity: 10 };

  it('should say a missing field is required', async () => {
    await expect(errorsFor({ title: 'Final', startsAt: valid.startsAt })).resolves.toEqual([{ field: 'capacity', message: 'capacity is required' }]);
  });

  it('should report the type check for a value of the wrong type, not a range rule', async () => {
    await expect(errorsFor({ ...valid, capacity: '5' })).resolves.toEqual([{ field: 'capacity', message: 'capacity must be an integer number' }]);
  });

  it('should report a range rule for a number out of range', async () => {
    await expect(errorsFor({ ...valid, capacity: -1 })).resolves.toEqual([{ field: 'capacity', message: 'capacity must not be less than 0' }]);
  });

  it('should name unknown properties', async () => {
    await expect(errorsFor({ ...valid, price: 3 })).resolves.toEqual([{ field: 'price', message: 'property price should not exist' }]);
  });
});
