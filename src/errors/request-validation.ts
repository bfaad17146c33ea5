import { BadRequestException, ParseUUIDPipe, ValidationPipe, type ValidationError } from '@nestjs/common';
import { Problem } from './problem';

export interface FieldError {
  /** The body property, query parameter or path parameter, as a dotted path for nested values. */
  field: string;
  message: string;
}

/** Bad input, with one entry for each offending field. */
@Problem('validation-failed', (e: RequestValidationError) => ({ errors: e.errors }))
export class RequestValidationError extends BadRequestException {
  constructor(readonly errors: FieldError[]) {
    super(errors.map((error) => error.message).join('; '));
  }
}

/**
 * One message per field: "is required" when the value is missing, else the message of the
 * rule declared first on the property (by convention its type check). class-validator runs
 * decorators bottom-up, so that rule is the last in `constraints`; "capacity must be an
 * integer number" is the useful answer to "5", not "must not be greater than 1000000".
 */
export function flattenValidationErrors(errors: ValidationError[], parentPath = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parentPath ? `${parentPath}.${error.property}` : error.property;
    const messages = Object.values(error.constraints ?? {});
    const own =
      messages.length === 0
        ? []
        : [{ field, message: error.value === undefined && !isUnknownProperty(error) ? `${field} is required` : messages.at(-1)! }];
    return [...own, ...flattenValidationErrors(error.children ?? [], field)];
  });
}

function isUnknownProperty(error: ValidationError): boolean {
  return error.constraints?.whitelistValidation !== undefined;
}

/**
 * Strict input: unknown properties are refused rather than dropped, and nothing is coerced
 * (a "5" is not a number), so what we store is exactly what the client meant.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    transform: true,
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transformOptions: { enableImplicitConversion: false },
    // value: true only so that flattenValidationErrors can tell a missing field; values are never sent back.
    validationError: { target: false, value: true },
    exceptionFactory: (errors) => new RequestValidationError(flattenValidationErrors(errors)),
  });
}

/** Validates a UUID path parameter and names it in the 400 answer. */
export function uuidPipe(name: string): ParseUUIDPipe {
  return new ParseUUIDPipe({
    exceptionFactory: () => new RequestValidationError([{ field: name, message: `${name} must be a UUID` }]),
  });
}
