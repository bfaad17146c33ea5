import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  registerDecorator,
  type ValidationArguments,
  validateSync,
} from 'class-validator';

/** Parses an environment string as an integer; anything else stays as it is and fails IsInt. */
const toInt = () =>
  Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value,
  );

const toBoolean = () =>
  Transform(({ value }: { value: unknown }) => {
    if (typeof value !== 'string') return value;
    const normalized = value.trim().toLowerCase();
    if (['true', '1', 'yes'].includes(normalized)) return true;
    if (['false', '0', 'no'].includes(normalized)) return false;
    return value;
  });

/** More workers than this is a typo, not a deployment: each holds its own database pool. */
export const MAX_WEB_CONCURRENCY = 64;

/** One message whatever is wrong, rather than IsInt's, Min's and Max's all at once for a word. */
function IsWorkerCount(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isWorkerCount',
      target: target.constructor,
      propertyName: String(propertyName),
      validator: {
        validate: (value: unknown) => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_WEB_CONCURRENCY,
        defaultMessage: ({ property, value }: ValidationArguments) =>
          `${property} must be a whole number of worker processes from 1 (one process, no cluster) to ${MAX_WEB_CONCURRENCY}, not ${JSON.stringify(value)}`,
      },
    });
}

/**
 * Every environment variable the service reads, with its default. Validated once at startup;
 * a bad value stops the service with a message that names the variable.
 */
export class EnvironmentVariables {
  @IsIn(['development', 'production', 'test'])
  NODE_ENV: 'development' | 'production' | 'test' = 'development';

  @IsString()
  HOST = '0.0.0.0';

  @toInt() @IsInt() @Min(0) @Max(65535)
  PORT = 3000;

  /** Processes serving the port: 1 is the plain service; more makes main.ts a node:cluster primary of that many workers. */
  @toInt() @IsWorkerCount()
  WEB_CONCURRENCY = 1;

  @IsIn(['fatal', 'error', 'warn', 'log', 'debug', 'verbose'])
  LOG_LEVEL: 'fatal' | 'error' | 'warn' | 'log' | 'debug' | 'verbose' = 'log';

  @toInt() @IsInt() @Min(1024) @Max(10 * 1024 * 1024)
  HTTP_BODY_LIMIT_BYTES = 16 * 1024;

  /** Which proxies' X-Forwarded-For entries to believe (see trust-proxy.ts); unset: none. */
  @IsOptional() @IsString()
  TRUST_PROXY?: string = undefined;

  @IsOptional() @Matches(/^postgres(ql)?:\/\/\S+$/, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL?: string = undefined;

  /** What DATABASE_URL points at: PostgreSQL itself (none), or a pooler in transaction mode such as PgBouncer's pool_mode=transaction. */
  @IsIn(['none', 'transaction'])
  DATABASE_POOLER: 'none' | 'transaction' = 'none';

  /** Streaming replicas for reads that may be a little stale (match lists and availability), comma-separated. */
  @IsOptional() @IsString()
  DATABASE_READ_URLS?: string = undefined;

  /** A replica serves reads only while its replay lag, measured on it, is at most this. */
  @toInt() @IsInt() @Min(0) @Max(3_600_000)
  DATABASE_READ_MAX_LAG_MS = 1_000;

  /** How often each replica's lag is measured. */
  @toInt() @IsInt() @Min(50) @Max(60_000)
  DATABASE_READ_LAG_CHECK_INTERVAL_MS = 500;

  /** PostgreSQL itself, for migrations and their session-level lock, when DATABASE_URL is a pooler. */
  @IsOptional() @Matches(/^postgres(ql)?:\/\/\S+$/, { message: 'DATABASE_DIRECT_URL must be a postgres:// URL' })
  DATABASE_DIRECT_URL?: string = undefined;

  @toBoolean() @IsBoolean()
  DATABASE_MIGRATE_ON_START = false;

  @toInt() @IsInt() @Min(1) @Max(1000)
  DATABASE_POOL_MAX = 20;

  @toInt() @IsInt() @Min(100) @Max(600_000)
  DATABASE_POOL_WAIT_TIMEOUT_MS = 5_000;

  @toInt() @IsInt() @Min(1_000) @Max(3_600_000)
  DATABASE_POOL_IDLE_TIMEOUT_MS = 30_000;

  @toInt() @IsInt() @Min(100) @Max(3_600_000)
  DATABASE_STATEMENT_TIMEOUT_MS = 10_000;

  @toInt() @IsInt() @Min(100) @Max(3_600_000)
  DATABASE_QUERY_TIMEOUT_MS = 12_000;

  @toInt() @IsInt() @Min(50) @Max(600_000)
  DATABASE_LOCK_TIMEOUT_MS = 3_000;

  @toInt() @IsInt() @Min(100) @Max(3_600_000)
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS = 5_000;

  @toInt() @IsInt() @Min(0) @Max(20)
  DATABASE_CONFLICT_RETRIES = 3;

  @toInt() @IsInt() @Min(0) @Max(3_600_000)
  DATABASE_KEEPALIVE_INITIAL_DELAY_MS = 10_000;

  @toInt() @IsInt() @Min(1) @Max(7_200)
  DATABASE_TCP_KEEPALIVES_IDLE_S = 30;

  @toInt() @IsInt() @Min(1) @Max(600)
  DATABASE_TCP_KEEPALIVES_INTERVAL_S = 10;

  @toInt() @IsInt() @Min(1) @Max(100)
  DATABASE_TCP_KEEPALIVES_COUNT = 3;

  @toInt() @IsInt() @Min(0) @Max(3_600_000)
  DATABASE_TCP_USER_TIMEOUT_MS = 60_000;

  @toInt() @IsInt() @Min(0) @Max(3_600_000)
  DATABASE_CONNECTION_CHECK_INTERVAL_MS = 5_000;

  @IsString()
  EMBEDDED_POSTGRES_DIR = '.data/postgres';

  @toInt() @IsInt() @Min(1) @Max(65535)
  EMBEDDED_POSTGRES_PORT = 54329;

  @IsOptional() @Matches(/^rediss?:\/\/\S+$/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL?: string = undefined;

  /** Redis under Sentinel, instead of REDIS_URL: the sentinels as host:port, separated by commas. */
  @IsOptional() @IsString()
  REDIS_SENTINELS?: string = undefined;

  /** The master group name the sentinels monitor (sentinel.conf: sentinel monitor <name> ...). */
  @IsOptional() @IsString()
  REDIS_SENTINEL_NAME?: string = undefined;

  /** With REDIS_SENTINELS: the password of the Redis master and replicas, if they require one. */
  @IsOptional() @IsString()
  REDIS_PASSWORD?: string = undefined;

  /** With REDIS_SENTINELS: the password of the sentinels themselves, if they require one. */
  @IsOptional() @IsString()
  REDIS_SENTINEL_PASSWORD?: string = undefined;

  @IsOptional() @IsString() @MinLength(32, { message: 'AUTH_JWT_SECRET must be at least 32 characters long' })
  AUTH_JWT_SECRET?: string = undefined;

  /** The identity provider's JSON Web Key Set; unset with AUTH_ISSUER set: discovered from the issuer's OpenID configuration. */
  @IsOptional() @Matches(/^https?:\/\/\S+$/, { message: 'AUTH_JWKS_URL must be an http:// or https:// URL' })
  AUTH_JWKS_URL?: string = undefined;

  /** The `iss` every identity-provider token must carry, exactly as the provider writes it. */
  @IsOptional() @Matches(/^https?:\/\/\S+$/, { message: 'AUTH_ISSUER must be an http:// or https:// URL' })
  AUTH_ISSUER?: string = undefined;

  /** Comma-separated: an identity-provider token's `aud` must contain at least one of them. */
  @IsOptional() @IsString()
  AUTH_AUDIENCE?: string = undefined;

  /** Comma-separated asymmetric JWS algorithms accepted from the identity provider. */
  @IsString()
  AUTH_ALGORITHMS = 'RS256,PS256,ES256,EdDSA';

  /** The claim holding the customer id: a claim name, or a dotted path into nested claims. */
  @Matches(/^\S+$/, { message: 'AUTH_CUSTOMER_CLAIM must be a claim name or dotted path without spaces' })
  AUTH_CUSTOMER_CLAIM = 'sub';

  /** The claim holding the caller's roles (an array of strings): a claim name, or a dotted path such as realm_access.roles. */
  @Matches(/^\S+$/, { message: 'AUTH_ROLES_CLAIM must be a claim name or dotted path without spaces' })
  AUTH_ROLES_CLAIM = 'roles';

  /** The role that grants the admin operations. */
  @Matches(/^\S+$/, { message: 'AUTH_ADMIN_ROLE must be a role name without spaces' })
  AUTH_ADMIN_ROLE = 'admin';

  /** Seconds of clock difference allowed when checking exp and nbf. */
  @toInt() @IsInt() @Min(0) @Max(300)
  AUTH_CLOCK_TOLERANCE_S = 30;

  /** How long one fetch of the key set (or of the OpenID configuration) may take. */
  @toInt() @IsInt() @Min(100) @Max(60_000)
  AUTH_JWKS_TIMEOUT_MS = 5_000;

  /** After a fetch of the key set, how long before an unknown key id may cause another one. */
  @toInt() @IsInt() @Min(0) @Max(3_600_000)
  AUTH_JWKS_COOLDOWN_MS = 30_000;

  /** Cached keys older than this are refreshed in the background; they keep serving until a refresh succeeds. */
  @toInt() @IsInt() @Min(1_000) @Max(86_400_000)
  AUTH_JWKS_MAX_AGE_MS = 600_000;

  /** Comma-separated exact origins (scheme://host[:port]) whose browsers may call the API; unset: no CORS. */
  @IsOptional() @IsString()
  CORS_ORIGINS?: string = undefined;

  @toInt() @IsInt() @Min(1) @Max(10_000)
  BOOKING_MAX_SLOTS = 10;

  @toInt() @IsInt() @Min(1) @Max(1_000)
  BOOKING_BATCH_MAX = 100;

  @toInt() @IsInt() @Min(1) @Max(100)
  BOOKING_CONCURRENT_BATCHES = 1;

  @toInt() @IsInt() @Min(1_000) @Max(86_400_000)
  HOLD_TTL_MS = 600_000;

  @toInt() @IsInt() @Min(0) @Max(3_600_000)
  HOLD_SWEEP_INTERVAL_MS = 30_000;

  /** How long a waitlist offer (a hold in the waiting customer's name) waits for its confirmation. */
  @toInt() @IsInt() @Min(1_000) @Max(7 * 86_400_000)
  WAITLIST_OFFER_TTL_MS = 900_000;

  @toInt() @IsInt() @Min(1_000) @Max(30 * 86_400_000)
  IDEMPOTENCY_KEY_TTL_MS = 86_400_000;

  @toInt() @IsInt() @Min(0) @Max(86_400_000)
  IDEMPOTENCY_PURGE_INTERVAL_MS = 3_600_000;

  /** How often one instance turns new events into webhook deliveries (0: no webhooks from this deployment). */
  @toInt() @IsInt() @Min(0) @Max(3_600_000)
  WEBHOOK_DISPATCH_INTERVAL_MS = 250;

  /** How often each instance claims due webhook deliveries and sends them (0: this instance sends none). */
  @toInt() @IsInt() @Min(0) @Max(3_600_000)
  WEBHOOK_RELAY_INTERVAL_MS = 250;

  /** The whole time one delivery attempt may take, connecting included. */
  @toInt() @IsInt() @Min(100) @Max(120_000)
  WEBHOOK_TIMEOUT_MS = 10_000;

  /** Seconds to wait before each retry of a failed delivery, comma-separated; after the last, the delivery is marked failed. */
  @Matches(/^\s*\d+(\s*,\s*\d+)*\s*$/, { message: 'WEBHOOK_RETRY_SCHEDULE must be a comma-separated list of whole seconds, such as 5,30,120' })
  WEBHOOK_RETRY_SCHEDULE = '5,30,120,600,1800,3600,10800,21600,43200';

  /** Deliveries sent at once to one endpoint by one instance. */
  @toInt() @IsInt() @Min(1) @Max(100)
  WEBHOOK_CONCURRENCY_PER_ENDPOINT = 4;

  /** Allow endpoints on private, loopback and link-local addresses (tests, or receivers inside your own network). */
  @toBoolean() @IsBoolean()
  WEBHOOK_ALLOW_PRIVATE_NETWORKS = false;

  /** After a secret rotation, how long the previous secret still signs deliveries beside the new one. */
  @toInt() @IsInt() @Min(0) @Max(30 * 86_400_000)
  WEBHOOK_SECRET_ROTATION_GRACE_MS = 86_400_000;

  /** How long events are kept once every delivery of them has ended. */
  @toInt() @IsInt() @Min(60_000) @Max(365 * 86_400_000)
  EVENT_RETENTION_MS = 7 * 86_400_000;

  @toInt() @IsInt() @Min(0) @Max(86_400_000)
  EVENT_PURGE_INTERVAL_MS = 3_600_000;

  @toInt() @IsInt() @Min(0) @Max(600_000)
  SHUTDOWN_READINESS_DELAY_MS = 5_000;

  @toInt() @IsInt() @Min(0) @Max(3_600_000)
  SHUTDOWN_GRACE_PERIOD_MS = 25_000;

  @toInt() @IsInt() @Min(10) @Max(60_000)
  HEALTH_CHECK_TIMEOUT_MS = 1_000;

  @toInt() @IsInt() @Min(10) @Max(60_000)
  REDIS_COMMAND_TIMEOUT_MS = 500;

  @toInt() @IsInt() @Min(0) @Max(60_000)
  LOCK_CLOCK_TOLERANCE_MS = 500;

  @toInt() @IsInt() @Min(1) @Max(3_600_000)
  DATABASE_SLOW_TRANSACTION_MS = 5_000;

  /** After a connection failure during COMMIT: how long to keep asking the database whether the write committed (0: do not ask). */
  @toInt() @IsInt() @Min(0) @Max(60_000)
  DATABASE_OUTCOME_CHECK_TIMEOUT_MS = 5_000;

  @toInt() @IsInt() @Min(0) @Max(86_400_000)
  RECONCILE_INTERVAL_MS = 60_000;

  @toInt() @IsInt() @Min(100) @Max(3_600_000)
  RATE_LIMIT_WINDOW_MS = 10_000;

  /** Writes per window per customer; 0 turns the limit off. */
  @toInt() @IsInt() @Min(0) @Max(1_000_000)
  RATE_LIMIT_PER_CUSTOMER = 50;

  /** Writes per window per client IP address; 0 turns the limit off. */
  @toInt() @IsInt() @Min(0) @Max(1_000_000)
  RATE_LIMIT_PER_IP = 200;

  @IsOptional() @IsString() @MinLength(16, { message: 'METRICS_TOKEN must be at least 16 characters long' })
  METRICS_TOKEN?: string = undefined;

  @IsOptional() @toInt() @IsInt() @Min(1) @Max(65535)
  METRICS_PORT?: number = undefined;
}

export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

/** Validates the environment; throws a ConfigurationError naming every bad variable. */
export function parseEnvironment(env: NodeJS.ProcessEnv): EnvironmentVariables {
  const known = Object.keys(new EnvironmentVariables());
  const present = Object.fromEntries(
    known.filter((name) => env[name] !== undefined && env[name] !== '').map((name) => [name, env[name]]),
  );
  const parsed = plainToInstance(EnvironmentVariables, present, { exposeDefaultValues: true });
  const errors = validateSync(parsed, { skipMissingProperties: false });
  if (errors.length > 0) {
    const details = errors.flatMap((error) => Object.values(error.constraints ?? {}));
    throw new ConfigurationError(`Invalid configuration: ${details.join('; ')}`);
  }
  return parsed;
}
