/**
 * Prints a bearer token for local use, signed with AUTH_JWT_SECRET (or the development secret),
 * with the default claims `sub` and `roles`.
 *   npm run token -- --sub alice [--admin] [--expires-in 3600]
 */
import { parseArgs } from 'node:util';
import { signAccessToken } from '../src/auth/jwt';
import { loadConfig } from '../src/config/app-config';

function main(): void {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      admin: { type: 'boolean', default: false },
      'expires-in': { type: 'string', default: '3600' },
    },
    strict: true,
  });
  const expiresIn = Number(values['expires-in']);
  if (!values.sub) throw new Error('--sub <customer id> is required');
  if (!Number.isInteger(expiresIn) || expiresIn <= 0) throw new Error('--expires-in must be a positive number of seconds');
  const { auth } = loadConfig(process.env);
  if (auth.jwtSecret === undefined) throw new Error('no AUTH_JWT_SECRET to sign with: with an identity provider configured, get tokens from it');
  process.stdout.write(`${signAccessToken({ sub: values.sub, admin: values.admin }, auth.jwtSecret, expiresIn)}\n`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`token: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}
