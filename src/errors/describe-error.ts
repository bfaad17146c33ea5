/** An error as one log line: its name and message (anything else thrown, as a string). */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
