import { applyDecorators } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';

/** Documents the optional Idempotency-Key header of a write. */
export const ApiIdempotencyKey = () =>
  applyDecorators(
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'Makes the write safe to retry: the same key with the same request replays the first success (header Idempotent-Replayed: true) ' +
        'for IDEMPOTENCY_KEY_TTL_MS (default 24 h); with a different request 422; while the first is still running 409 with Retry-After. ' +
        'Scoped to the caller and the endpoint.',
    }),
  );
