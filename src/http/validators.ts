import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsInt, IsISO8601, Matches, Max, Min, NotContains, ValidateIf } from 'class-validator';

/**
 * An ISO 8601 date-time with an explicit offset ("2026-12-01T18:30:00Z", "...+02:00"): a
 * time without a zone would be read in the server's zone. Strict mode refuses impossible
 * dates such as February 30.
 */
export const IsZonedDateTime = () =>
  applyDecorators(
    Matches(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/, {
      message: ({ property }) => `${property} must be an ISO 8601 date-time with a time zone, e.g. 2026-12-01T18:30:00Z`,
    }),
    IsISO8601({ strict: true, strictSeparator: true }, { message: ({ property }) => `${property} must be a real calendar date and time` }),
  );

/** A query-string integer: only plain digits are converted, so "1.5", "1e3" and "abc" fail IsInt. */
export const IsQueryInt = (min: number, max: number) =>
  applyDecorators(
    Transform(({ value }: { value: unknown }) => (typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : value)),
    IsInt(),
    Min(min),
    Max(max),
  );

/**
 * The property may be left out, but when sent it is validated: unlike IsOptional, a null is
 * refused instead of being read as "absent" (a PATCH with "capacity": null is a mistake).
 */
export const IsOmittable = () => ValidateIf((_object: object, value: unknown) => value !== undefined);

/** PostgreSQL text cannot hold the NUL character; refuse it as bad input instead of failing the INSERT. */
export const HasNoNulCharacter = () =>
  NotContains('\u0000', { message: ({ property }) => `${property} must not contain the NUL character` });
