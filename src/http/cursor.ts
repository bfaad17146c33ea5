import { decodeCursor, type KeysetPosition } from '../database/sql';
import { RequestValidationError } from '../errors/request-validation';

/** Reads a `cursor` query parameter; one this API did not hand out is a 400 naming the parameter. */
export function cursorPosition(cursor: string | undefined): KeysetPosition | undefined {
  if (cursor === undefined) return undefined;
  const position = decodeCursor(cursor);
  if (!position) throw new RequestValidationError([{ field: 'cursor', message: 'cursor is not one this API returned' }]);
  return position;
}
