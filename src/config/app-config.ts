import path from 'node:path';
import { ConfigurationError, type EnvironmentVariables, parseEnvironment } from './environment';
import { parseTrustProxy, type TrustProxy } from './trust-proxy';

/**
 * The development secret is public (it is in the README). It is accepted only outside
 * production, so a token minted with it never works against a production instance.
 */
export const DEVELOPMENT_JWT_SECRET = 'development-only-secret-do-not-use-in-production';

export interface DatabaseConfig {
  /** Absent: the service runs an embedded PostgreSQL (see embedded-postgres.ts). */
  url: string | undefined;
  /**
   * 'transaction': `url` is a pooler that hands a server connection to one transaction at a
   * time (PgBouncer pool_mode=transaction): no settings in the startup packet, no named prepared
   * statements, the timeouts set per transaction, migrations over `directUrl`.
   */
  pooler: 'none' | 'transaction';
  /** PostgreSQL itself, for migrations (and their session-level advisory lock); defaults to `url`. */
  directUrl: string | undefined;
  /** Streaming replicas for stale-tolerant reads (read-replicas.ts), and the lag bound and check interval. */
  readUrls: string[];
  readMaxLagMs: number;
  readLagCheckIntervalMs: number;
  migrateOnStart: boolean;
  poolMax: number;
  poolWaitTimeoutMs: number;
  poolIdleTimeoutMs: number;
  statementTimeoutMs: number;
  queryTimeoutMs: number;
  lockTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
  /** Transactions longer than this are counted and logged as slow. */
  slowTransactionMs: number;
  /** Reruns of a transaction after a deadlock or serialization failure. */
  conflictRetries: number;
  /** How long a write whose COMMIT outcome is unknown keeps asking the database what happened. */
  outcomeCheckTimeoutMs: number;
  keepAliveInitialDelayMs: number;
  tcpKeepalivesIdleS: number;
  tcpKeepalivesIntervalS: number;
  tcpKeepalivesCount: number;
  tcpUserTimeoutMs: number;
  connectionCheckIntervalMs: number;
}

export interface EmbeddedPostgresConfig {
  dataDir: string;
  port: number;
  database: string;
}

/**
 * The asymmetric algorithms an identity provider may sign with. HS256 is not among them: it
 * belongs to AUTH_JWT_SECRET alone, so a provider's public key can never serve as an HMAC secret.
 */
export const IDENTITY_PROVIDER_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/** Tokens signed by an OpenID Connect / OAuth 2 identity provider and checked against its published keys. */
export interface IdentityProviderConfig {
  /** The exact `iss` of its tokens. */
  issuer: string;
  /** Undefined: discovered from `${issuer}/.well-known/openid-configuration`. */
  jwksUrl: string | undefined;
  /** A token's `aud` must contain one of these. */
  audiences: string[];
  algorithms: string[];
  jwksTimeoutMs: number;
  /** After a fetch, how long an unknown key id is refused without fetching again. */
  jwksCooldownMs: number;
  /** Keys older than this are refreshed in the background while they keep serving. */
  jwksMaxAgeMs: number;
}

export interface AuthConfig {
  /** HS256 tokens are verified with this secret; undefined: every HS256 token is refused. */
  jwtSecret: string | undefined;
  /** Undefined: only HS256 tokens are accepted. */
  identityProvider: IdentityProviderConfig | undefined;
  /** Where the customer id and the roles are in a token's claims (caller.ts reads them). */
  customerClaim: string;
  rolesClaim: string;
  adminRole: string;
  clockToleranceS: number;
}

export interface AppConfig {
  env: 'development' | 'production' | 'test';
  /** trustProxy: whose X-Forwarded-For names the client (trust-proxy.ts); corsOrigins: empty, no CORS. */
  http: { host: string; port: number; bodyLimitBytes: number; trustProxy: TrustProxy; corsOrigins: string[] };
  /** WEB_CONCURRENCY: 1, one process; more, a node:cluster primary forks that many workers (lifecycle/cluster.ts). */
  cluster: { workers: number };
  logLevel: 'fatal' | 'error' | 'warn' | 'log' | 'debug' | 'verbose';
  database: DatabaseConfig;
  embeddedPostgres: EmbeddedPostgresConfig;
  /** lockClockToleranceMs: how far the Redis clock may run ahead of ours before lock requests count as late. */
  redis: RedisConfig;
  auth: AuthConfig;
  health: { checkTimeoutMs: number };
  shutdown: { readinessDelayMs: number; gracePeriodMs: number };
  /** METRICS_PORT set: /metrics is served there, not on the API port. */
  metrics: { token: string | undefined; port: number | undefined };
  reconciliation: { intervalMs: number };
  booking: { maxSlotsPerBooking: number; maxBatchSize: number; concurrentBatches: number };
  holds: { ttlMs: number; sweepIntervalMs: number };
  waitlist: { offerTtlMs: number };
  idempotency: { keyTtlMs: number; purgeIntervalMs: number };
  events: { retentionMs: number; purgeIntervalMs: number };
  webhooks: WebhooksConfig;
  /** Fixed-window limits on writes under /api/v1; a limit of 0 is off. */
  rateLimit: RateLimitConfig;
}

export interface WebhooksConfig {
  dispatchIntervalMs: number;
  relayIntervalMs: number;
  timeoutMs: number;
  /** Delay before each retry; after the last, the delivery has failed. */
  retryScheduleMs: number[];
  concurrencyPerEndpoint: number;
  allowPrivateNetworks: boolean;
  secretRotationGraceMs: number;
}

export interface RateLimitConfig {
  windowMs: number;
  perCustomer: number;
  perIp: number;
}

/** Where Redis is: one server (REDIS_URL), or the master of a Sentinel group (REDIS_SENTINELS). Neither: no Redis. */
export interface RedisConfig {
  url: string | undefined;
  sentinel: { sentinels: Array<{ host: string; port: number }>; name: string; password?: string; sentinelPassword?: string } | undefined;
  commandTimeoutMs: number;
  lockClockToleranceMs: number;
}

/** Injection token for the validated configuration. */
export const APP_CONFIG = Symbol('APP_CONFIG');

export interface LoadConfigOptions {
  /**
   * The service refuses to start in production without a way to verify tokens (an identity
   * provider or a real JWT secret). Tools that never check tokens (the migration CLI, db:stop)
   * pass false, so running migrations does not need one.
   */
  requireProductionAuth?: boolean;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadConfigOptions = {}): AppConfig {
  const vars = parseEnvironment(env);

  if (vars.DATABASE_QUERY_TIMEOUT_MS <= vars.DATABASE_STATEMENT_TIMEOUT_MS) {
    // The server must cancel a statement before the client gives up on it; otherwise the
    // client drops a connection whose statement is still running and holding locks.
    throw new ConfigurationError(
      `Invalid configuration: DATABASE_QUERY_TIMEOUT_MS (${vars.DATABASE_QUERY_TIMEOUT_MS}) must be greater than DATABASE_STATEMENT_TIMEOUT_MS (${vars.DATABASE_STATEMENT_TIMEOUT_MS})`,
    );
  }
  if (vars.DATABASE_LOCK_TIMEOUT_MS >= vars.DATABASE_STATEMENT_TIMEOUT_MS) {
    throw new ConfigurationError(
      `Invalid configuration: DATABASE_LOCK_TIMEOUT_MS (${vars.DATABASE_LOCK_TIMEOUT_MS}) must be less than DATABASE_STATEMENT_TIMEOUT_MS (${vars.DATABASE_STATEMENT_TIMEOUT_MS})`,
    );
  }

  if (vars.SHUTDOWN_READINESS_DELAY_MS >= vars.SHUTDOWN_GRACE_PERIOD_MS && vars.SHUTDOWN_GRACE_PERIOD_MS > 0) {
    throw new ConfigurationError(
      `Invalid configuration: SHUTDOWN_READINESS_DELAY_MS (${vars.SHUTDOWN_READINESS_DELAY_MS}) must be less than SHUTDOWN_GRACE_PERIOD_MS (${vars.SHUTDOWN_GRACE_PERIOD_MS})`,
    );
  }

  if (vars.DATABASE_POOLER === 'transaction') {
    if (vars.DATABASE_URL === undefined) {
      throw new ConfigurationError('Invalid configuration: DATABASE_POOLER=transaction needs DATABASE_URL, the address of the pooler');
    }
    if (vars.DATABASE_MIGRATE_ON_START && vars.DATABASE_DIRECT_URL === undefined) {
      throw new ConfigurationError(
        'Invalid configuration: DATABASE_MIGRATE_ON_START=true with DATABASE_POOLER=transaction needs DATABASE_DIRECT_URL: migrations hold a session-level lock, which a transaction pooler cannot keep',
      );
    }
  }

  return {
    env: vars.NODE_ENV,
    http: {
      host: vars.HOST,
      port: vars.PORT,
      bodyLimitBytes: vars.HTTP_BODY_LIMIT_BYTES,
      trustProxy: parseTrustProxy(vars.TRUST_PROXY),
      corsOrigins: parseCorsOrigins(vars.CORS_ORIGINS),
    },
    cluster: { workers: vars.WEB_CONCURRENCY },
    logLevel: vars.LOG_LEVEL,
    database: {
      url: vars.DATABASE_URL,
      pooler: vars.DATABASE_POOLER,
      directUrl: vars.DATABASE_DIRECT_URL,
      readUrls: parseReadUrls(vars.DATABASE_READ_URLS),
      readMaxLagMs: vars.DATABASE_READ_MAX_LAG_MS,
      readLagCheckIntervalMs: vars.DATABASE_READ_LAG_CHECK_INTERVAL_MS,
      migrateOnStart: vars.DATABASE_MIGRATE_ON_START,
      poolMax: vars.DATABASE_POOL_MAX,
      poolWaitTimeoutMs: vars.DATABASE_POOL_WAIT_TIMEOUT_MS,
      poolIdleTimeoutMs: vars.DATABASE_POOL_IDLE_TIMEOUT_MS,
      statementTimeoutMs: vars.DATABASE_STATEMENT_TIMEOUT_MS,
      queryTimeoutMs: vars.DATABASE_QUERY_TIMEOUT_MS,
      lockTimeoutMs: vars.DATABASE_LOCK_TIMEOUT_MS,
      idleInTransactionTimeoutMs: vars.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      conflictRetries: vars.DATABASE_CONFLICT_RETRIES,
      outcomeCheckTimeoutMs: vars.DATABASE_OUTCOME_CHECK_TIMEOUT_MS,
      slowTransactionMs: vars.DATABASE_SLOW_TRANSACTION_MS,
      keepAliveInitialDelayMs: vars.DATABASE_KEEPALIVE_INITIAL_DELAY_MS,
      tcpKeepalivesIdleS: vars.DATABASE_TCP_KEEPALIVES_IDLE_S,
      tcpKeepalivesIntervalS: vars.DATABASE_TCP_KEEPALIVES_INTERVAL_S,
      tcpKeepalivesCount: vars.DATABASE_TCP_KEEPALIVES_COUNT,
      tcpUserTimeoutMs: vars.DATABASE_TCP_USER_TIMEOUT_MS,
      connectionCheckIntervalMs: vars.DATABASE_CONNECTION_CHECK_INTERVAL_MS,
    },
    embeddedPostgres: {
      // Relative to the working directory, as paths in the environment usually are.
      dataDir: path.resolve(vars.EMBEDDED_POSTGRES_DIR),
      port: vars.EMBEDDED_POSTGRES_PORT,
      database: 'booking',
    },
    redis: {
      url: vars.REDIS_URL,
      sentinel: parseSentinel(vars),
      commandTimeoutMs: vars.REDIS_COMMAND_TIMEOUT_MS,
      lockClockToleranceMs: vars.LOCK_CLOCK_TOLERANCE_MS,
    },
    auth: parseAuth(vars, options),
    health: { checkTimeoutMs: vars.HEALTH_CHECK_TIMEOUT_MS },
    shutdown: { readinessDelayMs: vars.SHUTDOWN_READINESS_DELAY_MS, gracePeriodMs: vars.SHUTDOWN_GRACE_PERIOD_MS },
    metrics: { token: vars.METRICS_TOKEN, port: vars.METRICS_PORT },
    reconciliation: { intervalMs: vars.RECONCILE_INTERVAL_MS },
    booking: { maxSlotsPerBooking: vars.BOOKING_MAX_SLOTS, maxBatchSize: vars.BOOKING_BATCH_MAX, concurrentBatches: vars.BOOKING_CONCURRENT_BATCHES },
    holds: { ttlMs: vars.HOLD_TTL_MS, sweepIntervalMs: vars.HOLD_SWEEP_INTERVAL_MS },
    waitlist: { offerTtlMs: vars.WAITLIST_OFFER_TTL_MS },
    idempotency: { keyTtlMs: vars.IDEMPOTENCY_KEY_TTL_MS, purgeIntervalMs: vars.IDEMPOTENCY_PURGE_INTERVAL_MS },
    events: { retentionMs: vars.EVENT_RETENTION_MS, purgeIntervalMs: vars.EVENT_PURGE_INTERVAL_MS },
    webhooks: {
      dispatchIntervalMs: vars.WEBHOOK_DISPATCH_INTERVAL_MS,
      relayIntervalMs: vars.WEBHOOK_RELAY_INTERVAL_MS,
      timeoutMs: vars.WEBHOOK_TIMEOUT_MS,
      retryScheduleMs: vars.WEBHOOK_RETRY_SCHEDULE.split(',').map((seconds) => Number(seconds.trim()) * 1000),
      concurrencyPerEndpoint: vars.WEBHOOK_CONCURRENCY_PER_ENDPOINT,
      allowPrivateNetworks: vars.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      secretRotationGraceMs: vars.WEBHOOK_SECRET_ROTATION_GRACE_MS,
    },
    rateLimit: { windowMs: vars.RATE_LIMIT_WINDOW_MS, perCustomer: vars.RATE_LIMIT_PER_CUSTOMER, perIp: vars.RATE_LIMIT_PER_IP },
  };
}

function parseAuth(vars: EnvironmentVariables, options: LoadConfigOptions): AuthConfig {
  const identityProvider = parseIdentityProvider(vars);
  if (vars.NODE_ENV === 'production' && options.requireProductionAuth !== false) {
    if (vars.AUTH_JWT_SECRET === DEVELOPMENT_JWT_SECRET) {
      throw new ConfigurationError('Invalid configuration: AUTH_JWT_SECRET must not be the development secret when NODE_ENV=production');
    }
    if (identityProvider === undefined && vars.AUTH_JWT_SECRET === undefined) {
      throw new ConfigurationError(
        'Invalid configuration: NODE_ENV=production needs a way to verify tokens: AUTH_ISSUER (an identity provider) or AUTH_JWT_SECRET (a real secret, 32+ characters)',
      );
    }
  }
  // The development secret stands in only where nothing else verifies tokens: with an identity
  // provider configured, HS256 tokens are accepted only under a secret that was set on purpose.
  const fallbackSecret = identityProvider === undefined && vars.NODE_ENV !== 'production' ? DEVELOPMENT_JWT_SECRET : undefined;
  return {
    jwtSecret: vars.AUTH_JWT_SECRET ?? fallbackSecret,
    identityProvider,
    customerClaim: vars.AUTH_CUSTOMER_CLAIM,
    rolesClaim: vars.AUTH_ROLES_CLAIM,
    adminRole: vars.AUTH_ADMIN_ROLE,
    clockToleranceS: vars.AUTH_CLOCK_TOLERANCE_S,
  };
}

function parseIdentityProvider(vars: EnvironmentVariables): IdentityProviderConfig | undefined {
  const audiences = splitList(vars.AUTH_AUDIENCE);
  if (vars.AUTH_ISSUER === undefined) {
    if (vars.AUTH_JWKS_URL !== undefined) {
      throw new ConfigurationError('Invalid configuration: AUTH_JWKS_URL needs AUTH_ISSUER, the exact "iss" of the tokens its keys sign');
    }
    if (audiences.length > 0) throw new ConfigurationError('Invalid configuration: AUTH_AUDIENCE is only used with AUTH_ISSUER, which is not set');
    return undefined;
  }
  // Without an audience, a token the same provider issued to any other application would do.
  if (audiences.length === 0) {
    throw new ConfigurationError('Invalid configuration: AUTH_ISSUER needs AUTH_AUDIENCE, the "aud" value(s) of tokens meant for this service');
  }
  const algorithms = splitList(vars.AUTH_ALGORITHMS);
  const known: readonly string[] = IDENTITY_PROVIDER_ALGORITHMS;
  const unknown = algorithms.filter((algorithm) => !known.includes(algorithm));
  if (unknown.length > 0 || algorithms.length === 0) {
    throw new ConfigurationError(
      `Invalid configuration: AUTH_ALGORITHMS must list asymmetric algorithms among ${known.join(', ')}${unknown.length > 0 ? `; not ${unknown.map((name) => `"${name}"`).join(', ')}` : ''} (HS256 is AUTH_JWT_SECRET's)`,
    );
  }
  return {
    issuer: vars.AUTH_ISSUER,
    jwksUrl: vars.AUTH_JWKS_URL,
    audiences,
    algorithms,
    jwksTimeoutMs: vars.AUTH_JWKS_TIMEOUT_MS,
    jwksCooldownMs: vars.AUTH_JWKS_COOLDOWN_MS,
    jwksMaxAgeMs: vars.AUTH_JWKS_MAX_AGE_MS,
  };
}

/** Exact browser origins: scheme, host and port, nothing after (what a browser sends as Origin). */
function parseCorsOrigins(value: string | undefined): string[] {
  const origins = splitList(value);
  const invalid = origins.filter((origin) => {
    const url = URL.parse(origin);
    return url === null || !['http:', 'https:'].includes(url.protocol) || url.origin !== origin;
  });
  if (invalid.length > 0) {
    throw new ConfigurationError(
      `Invalid configuration: CORS_ORIGINS entries ${invalid.map((origin) => `"${origin}"`).join(', ')} are not exact origins such as https://app.example.com (scheme, host and port; no path, no trailing slash, no wildcard)`,
    );
  }
  return origins;
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
}

function parseSentinel(vars: EnvironmentVariables): RedisConfig['sentinel'] {
  if (vars.REDIS_SENTINELS === undefined) {
    for (const name of ['REDIS_SENTINEL_NAME', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD'] as const) {
      if (vars[name] !== undefined) throw new ConfigurationError(`Invalid configuration: ${name} is only used with REDIS_SENTINELS, which is not set`);
    }
    return undefined;
  }
  if (vars.REDIS_URL !== undefined) {
    throw new ConfigurationError('Invalid configuration: set REDIS_URL (one Redis server) or REDIS_SENTINELS (Redis under Sentinel), not both');
  }
  if (vars.REDIS_SENTINEL_NAME === undefined) {
    throw new ConfigurationError('Invalid configuration: REDIS_SENTINELS needs REDIS_SENTINEL_NAME, the master group name the sentinels monitor');
  }
  const entries = splitList(vars.REDIS_SENTINELS);
  const sentinels = entries.map((entry) => {
    const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) {
      throw new ConfigurationError(`Invalid configuration: REDIS_SENTINELS entry "${entry}" is not host:port`);
    }
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
  });
  if (sentinels.length === 0) throw new ConfigurationError('Invalid configuration: REDIS_SENTINELS lists no sentinel');
  return {
    sentinels,
    name: vars.REDIS_SENTINEL_NAME,
    ...(vars.REDIS_PASSWORD !== undefined && { password: vars.REDIS_PASSWORD }),
    ...(vars.REDIS_SENTINEL_PASSWORD !== undefined && { sentinelPassword: vars.REDIS_SENTINEL_PASSWORD }),
  };
}

function parseReadUrls(value: string | undefined): string[] {
  const urls = splitList(value);
  const invalid = urls.filter((url) => !/^postgres(ql)?:\/\/\S+$/.test(url));
  if (invalid.length > 0) {
    // Named by position, not by value: a URL may carry a password.
    const positions = invalid.map((url) => urls.indexOf(url) + 1).join(', ');
    throw new ConfigurationError(`Invalid configuration: DATABASE_READ_URLS entries ${positions} are not postgres:// URLs`);
  }
  return urls;
}
