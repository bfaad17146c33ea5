import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROBLEM_FIELDS, PROBLEM_TYPES, type ProblemType, type ProblemTypeName } from '../src/errors/problem-types';

export const README_PATH = join(__dirname, '..', 'README.md');
const BEGIN = '<!-- problem-types: generated from src/errors/problem-types.ts by `npm run docs:problems` -->';
const END = '<!-- /problem-types -->';

/** The README's table of problem types, from src/errors/problem-types.ts. */
export function renderProblemTable(): string {
  const rows = (Object.entries(PROBLEM_TYPES) as Array<[ProblemTypeName, ProblemType]>).map(([name, type]) => {
    const members = type.fields.map((field) => {
      const spec = PROBLEM_FIELDS[field];
      if (spec.type === 'fieldErrors') return `\`${field}: [{field, message}]\``;
      if ('enum' in spec) return `\`${field}\` (${spec.enum.map((value) => `\`${value}\``).join(' or ')})`;
      return `\`${field}\``;
    });
    if (type.oneFieldOf === true) members.splice(0, members.length, members.join(' or '));
    if (type.retryAfterSeconds !== undefined) members.push(`\`retryAfterSeconds\` (${type.retryAfterSeconds}), \`Retry-After: ${type.retryAfterSeconds}\``);
    else if (type.fields.includes('retryAfterSeconds')) members.push('`Retry-After`');
    return `| \`/problems/${name}\` | ${type.status} | ${type.when} | ${members.join(', ')} |`;
  });
  const plainHttp =
    '| `about:blank` | 401, 403, 404, 500, … | Plain HTTP errors: missing or invalid token (401, with `WWW-Authenticate: Bearer`), ' +
    'no admin role (403), unknown route (404), unexpected error (500, nothing internal revealed) | |';
  return [BEGIN, '| `type` | Status | When | Extra members |', '| --- | --- | --- | --- |', ...rows, plainHttp, END].join('\n');
}

/** The generated block as the README has it now, or undefined when its markers are missing. */
export function readmeProblemTable(readme: string): string | undefined {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  return begin === -1 || end === -1 ? undefined : readme.slice(begin, end + END.length);
}

if (require.main === module) {
  const readme = readFileSync(README_PATH, 'utf8');
  const current = readmeProblemTable(readme);
  if (current === undefined) throw new Error(`README.md lacks the markers ${BEGIN} ... ${END}`);
  writeFileSync(README_PATH, readme.replace(current, renderProblemTable()));
}
