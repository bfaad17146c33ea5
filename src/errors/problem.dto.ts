import { ApiProperty, ApiPropertyOptional, type ApiPropertyOptions } from '@nestjs/swagger';
import { PROBLEM_FIELDS, PROBLEM_TYPES, type ProblemField, type ProblemFieldName } from './problem-types';

export class FieldErrorResponse {
  @ApiProperty({ example: 'slots' }) field!: string;
  @ApiProperty({ example: 'slots must not be less than 1' }) message!: string;
}

/** RFC 9457 problem details, as every error answer of this API is shaped; the extension members come from problem-types.ts. */
export class ProblemResponse {
  @ApiProperty({ example: '/problems/insufficient-slots', description: 'about:blank for plain HTTP errors' }) type!: string;
  @ApiProperty({ example: 'Not enough slots left' }) title!: string;
  @ApiProperty({ example: 409 }) status!: number;
  @ApiProperty() detail!: string;
  @ApiPropertyOptional({ example: '/api/v1/matches/3b0c.../bookings' }) instance?: string;
  @ApiPropertyOptional({ description: 'The X-Request-Id of the request, to find its log lines' }) requestId?: string;
}

for (const [name, field] of Object.entries(PROBLEM_FIELDS) as Array<[ProblemFieldName, ProblemField]>) {
  const types = Object.entries(PROBLEM_TYPES)
    .filter(([, type]) => (type.fields as readonly string[]).includes(name) || (name === 'retryAfterSeconds' && 'retryAfterSeconds' in type))
    .map(([typeName]) => typeName);
  const description = `${types.join(', ')}: ${field.description}`;
  const options: ApiPropertyOptions =
    field.type === 'fieldErrors'
      ? { description, type: [FieldErrorResponse] }
      : field.type === 'object'
        ? { description, type: 'object', additionalProperties: true }
        : field.type === 'stringOrInteger'
          ? { description, type: Object, oneOf: [{ type: 'string' }, { type: 'integer' }] }
        : { description, type: field.type, ...(field.enum && { enum: [...field.enum] }) };
  ApiPropertyOptional(options)(ProblemResponse.prototype, name);
}
