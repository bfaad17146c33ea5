import path from 'node:path';
import { DEVELOPMENT_JWT_SECRET, loadConfig } from './app-config';
import { ConfigurationError } from './environment';

const REAL_SECRET = 'a-real-production-secret-of-32-chars!';

/** Calls loadConfig and returns the ConfigurationError it throws, failing the test if it throws nothing else. */
function configurationError(env: NodeJS.ProcessEnv): ConfigurationError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('uses the defaults documented in the README', () => {
    const config = loadConfig({});
    expect(config.env).toBe('development');
    expect(config.http).toEqual({ host: '0.0.0.0', port: 3000, bodyLimitBytes: 16 * 1024, trustProxy: false, corsOrigins: [] });
    expect(config.logLevel).toBe('log');
    expect(config.cluster).toEqual({ workers: 1 });
    expect(config.database).toEqual({
      url: undefined,
      pooler: 'none',
      directUrl: undefined,
      readUrls: [],
      readMaxLagMs: 1_000,
      readLagCheckIntervalMs: 500,
      migrateOnStart: false,
      poolMax: 20,
      poolWaitTimeoutMs: 5_000,
      poolIdleTimeoutMs: 30_000,
      statementTimeoutMs: 10_000,
      queryTimeoutMs: 12_000,
      lockTimeoutMs: 3_000,
      idleInTransactionTimeoutMs: 5_000,
      conflictRetries: 3,
      outcomeCheckTimeoutMs: 5_000,
      slowTransactionMs: 5000,
      keepAliveInitialDelayMs: 10_000,
      tcpKeepalivesIdleS: 30,
      tcpKeepalivesIntervalS: 10,
      tcpKeepalivesCount: 3,
      tcpUserTimeoutMs: 60_000,
      connectionCheckIntervalMs: 5_000,
    });
    expect(config.embeddedPostgres).toEqual({
      dataDir: path.resolve('.data/postgres'),
      port: 54329,
      database: 'booking',
    });
    expect(config.redis).toEqual({ url: undefined, sentinel: undefined, commandTimeoutMs: 500, lockClockToleranceMs: 500 });
    expect(config.health).toEqual({ checkTimeoutMs: 1000 });
    expect(config.shutdown).toEqual({ readinessDelayMs: 5000, gracePeriodMs: 25_000 });
    expect(config.metrics).toEqual({ token: undefined, port: undefined });
    expect(config.reconciliation).toEqual({ intervalMs: 60_000 });
    expect(config.auth).toEqual({
      jwtSecret: DEVELOPMENT_JWT_SECRET,
      identityProvider: undefined,
      customerClaim: 'sub',
      rolesClaim: 'roles',
      adminRole: 'admin',
      clockToleranceS: 30,
    });
    expect(config.booking.maxSlotsPerBooking).toBe(10);
    expect(config.holds).toEqual({ ttlMs: 600_000, sweepIntervalMs: 30_000 });
    expect(config.idempotency).toEqual({ keyTtlMs: 86_400_000, purgeIntervalMs: 3_600_000 });
    expect(config.events).toEqual({ retentionMs: 7 * 86_400_000, purgeIntervalMs: 3_600_000 });
    expect(config.webhooks).toEqual({
      dispatchIntervalMs: 250,
      relayIntervalMs: 250,
      timeoutMs: 10_000,
      retryScheduleMs: [5, 30, 120, 600, 1800, 3600, 10_800, 21_600, 43_200].map((seconds) => seconds * 1000),
      concurrencyPerEndpoint: 4,
      allowPrivateNetworks: false,
      secretRotationGraceMs: 86_400_000,
    });
    expect(config.rateLimit).toEqual({ windowMs: 10_000, perCustomer: 50, perIp: 200 });
  });

  it('reads every variable it is given', () => {
    const config = loadConfig({
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '8080',
      WEB_CONCURRENCY: '4',
      LOG_LEVEL: 'debug',
      HTTP_BODY_LIMIT_BYTES: '2048',
      DATABASE_URL: 'postgresql://user:pw@db.internal:5433/booking',
      DATABASE_MIGRATE_ON_START: 'true',
      DATABASE_POOL_MAX: '5',
      DATABASE_POOL_WAIT_TIMEOUT_MS: '1000',
      DATABASE_POOL_IDLE_TIMEOUT_MS: '2000',
      DATABASE_STATEMENT_TIMEOUT_MS: '4000',
      DATABASE_QUERY_TIMEOUT_MS: '5000',
      DATABASE_LOCK_TIMEOUT_MS: '500',
      DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '6000',
      DATABASE_CONFLICT_RETRIES: '5',
      DATABASE_SLOW_TRANSACTION_MS: '250',
      DATABASE_OUTCOME_CHECK_TIMEOUT_MS: '1500',
      DATABASE_READ_URLS: 'postgres://reader@replica-1:5432/booking, postgres://reader@replica-2:5432/booking',
      DATABASE_READ_MAX_LAG_MS: '250',
      DATABASE_READ_LAG_CHECK_INTERVAL_MS: '100',
      RECONCILE_INTERVAL_MS: '0',
      METRICS_TOKEN: 'a-metrics-token-16+',
      METRICS_PORT: '9464',
      DATABASE_KEEPALIVE_INITIAL_DELAY_MS: '0',
      DATABASE_TCP_KEEPALIVES_IDLE_S: '15',
      DATABASE_TCP_KEEPALIVES_INTERVAL_S: '5',
      DATABASE_TCP_KEEPALIVES_COUNT: '4',
      DATABASE_TCP_USER_TIMEOUT_MS: '0',
      DATABASE_CONNECTION_CHECK_INTERVAL_MS: '0',
      EMBEDDED_POSTGRES_DIR: '/tmp/pg-data',
      EMBEDDED_POSTGRES_PORT: '55432',
      REDIS_URL: 'rediss://cache:6380',
      AUTH_JWT_SECRET: REAL_SECRET,
      BOOKING_MAX_SLOTS: '4',
      BOOKING_BATCH_MAX: '16',
      BOOKING_CONCURRENT_BATCHES: '3',
      RATE_LIMIT_WINDOW_MS: '2000',
      RATE_LIMIT_PER_CUSTOMER: '0',
      RATE_LIMIT_PER_IP: '30',
      TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
      WEBHOOK_DISPATCH_INTERVAL_MS: '100',
      WEBHOOK_RELAY_INTERVAL_MS: '0',
      WEBHOOK_TIMEOUT_MS: '2000',
      WEBHOOK_RETRY_SCHEDULE: ' 1, 10 ,60',
      WEBHOOK_CONCURRENCY_PER_ENDPOINT: '2',
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      WEBHOOK_SECRET_ROTATION_GRACE_MS: '60000',
      EVENT_RETENTION_MS: '86400000',
      EVENT_PURGE_INTERVAL_MS: '0',
      WAITLIST_OFFER_TTL_MS: '60000',
      AUTH_ISSUER: 'https://id.example.com/realms/booking',
      AUTH_JWKS_URL: 'https://id.example.com/realms/booking/protocol/openid-connect/certs',
      AUTH_AUDIENCE: 'booking-api, booking-admin',
      AUTH_ALGORITHMS: 'RS256,ES384',
      AUTH_CUSTOMER_CLAIM: 'preferred_username',
      AUTH_ROLES_CLAIM: 'realm_access.roles',
      AUTH_ADMIN_ROLE: 'booking-admin',
      AUTH_CLOCK_TOLERANCE_S: '5',
      AUTH_JWKS_TIMEOUT_MS: '2000',
      AUTH_JWKS_COOLDOWN_MS: '10000',
      AUTH_JWKS_MAX_AGE_MS: '60000',
      CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
    });
    expect(config).toEqual({
      env: 'test',
      http: {
        host: '127.0.0.1',
        port: 8080,
        bodyLimitBytes: 2048,
        trustProxy: ['10.0.0.0/8', '127.0.0.1'],
        corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
      },
      logLevel: 'debug',
      cluster: { workers: 4 },
      database: {
        url: 'postgresql://user:pw@db.internal:5433/booking',
        pooler: 'none',
        directUrl: undefined,
        readUrls: ['postgres://reader@replica-1:5432/booking', 'postgres://reader@replica-2:5432/booking'],
        readMaxLagMs: 250,
        readLagCheckIntervalMs: 100,
        migrateOnStart: true,
        poolMax: 5,
        poolWaitTimeoutMs: 1000,
        poolIdleTimeoutMs: 2000,
        statementTimeoutMs: 4000,
        queryTimeoutMs: 5000,
        lockTimeoutMs: 500,
        idleInTransactionTimeoutMs: 6000,
        conflictRetries: 5,
        outcomeCheckTimeoutMs: 1500,
        slowTransactionMs: 250,
        keepAliveInitialDelayMs: 0,
        tcpKeepalivesIdleS: 15,
        tcpKeepalivesIntervalS: 5,
        tcpKeepalivesCount: 4,
        tcpUserTimeoutMs: 0,
        connectionCheckIntervalMs: 0,
      },
      embeddedPostgres: { dataDir: '/tmp/pg-data', port: 55432, database: 'booking' },
      redis: { url: 'rediss://cache:6380', sentinel: undefined, commandTimeoutMs: 500, lockClockToleranceMs: 500 },
      auth: {
        jwtSecret: REAL_SECRET,
        identityProvider: {
          issuer: 'https://id.example.com/realms/booking',
          jwksUrl: 'https://id.example.com/realms/booking/protocol/openid-connect/certs',
          audiences: ['booking-api', 'booking-admin'],
          algorithms: ['RS256', 'ES384'],
          jwksTimeoutMs: 2000,
          jwksCooldownMs: 10_000,
          jwksMaxAgeMs: 60_000,
        },
        customerClaim: 'preferred_username',
        rolesClaim: 'realm_access.roles',
        adminRole: 'booking-admin',
        clockToleranceS: 5,
      },
      booking: { maxSlotsPerBooking: 4, maxBatchSize: 16, concurrentBatches: 3 },
      holds: { ttlMs: 600_000, sweepIntervalMs: 30_000 },
      waitlist: { offerTtlMs: 60_000 },
      idempotency: { keyTtlMs: 86_400_000, purgeIntervalMs: 3_600_000 },
      health: { checkTimeoutMs: 1000 },
      shutdown: { readinessDelayMs: 5000, gracePeriodMs: 25_000 },
      metrics: { token: 'a-metrics-token-16+', port: 9464 },
      reconciliation: { intervalMs: 0 },
      rateLimit: { windowMs: 2000, perCustomer: 0, perIp: 30 },
      events: { retentionMs: 86_400_000, purgeIntervalMs: 0 },
      webhooks: {
        dispatchIntervalMs: 100,
        relayIntervalMs: 0,
        timeoutMs: 2000,
        retryScheduleMs: [1000, 10_000, 60_000],
        concurrencyPerEndpoint: 2,
        allowPrivateNetworks: true,
        secretRotationGraceMs: 60_000,
      },
    });
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).http.port).toBe(3000);
    expect(loadConfig({ DATABASE_URL: '' }).database.url).toBeUndefined();
  });

  it.each([
    ['DATABASE_POOL_MAX', 'abc'],
    ['DATABASE_POOL_MAX', '0'],
    ['DATABASE_POOL_MAX', '2.5'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80abc'],
    ['HTTP_BODY_LIMIT_BYTES', '10'],
    ['DATABASE_LOCK_TIMEOUT_MS', 'soon'],
    ['BOOKING_BATCH_MAX', '0'],
    ['BOOKING_CONCURRENT_BATCHES', '101'],
    ['BOOKING_MAX_SLOTS', '10001'],
    ['NODE_ENV', 'staging'],
    ['LOG_LEVEL', 'info'],
    ['DATABASE_MIGRATE_ON_START', 'maybe'],
    ['REDIS_URL', 'http://cache:6379'],
    ['RATE_LIMIT_WINDOW_MS', '50'],
    ['RATE_LIMIT_PER_CUSTOMER', '-1'],
    ['RATE_LIMIT_PER_IP', 'lots'],
    ['WEBHOOK_RETRY_SCHEDULE', '5s,30s'],
    ['WEBHOOK_RETRY_SCHEDULE', '5,,30'],
    ['WEBHOOK_TIMEOUT_MS', '0'],
    ['WEBHOOK_ALLOW_PRIVATE_NETWORKS', 'sometimes'],
    ['EVENT_RETENTION_MS', '1000'],
    ['AUTH_JWKS_URL', 'ftp://id.example.com/keys'],
    ['AUTH_ISSUER', 'id.example.com'],
    ['AUTH_CLOCK_TOLERANCE_S', '301'],
    ['AUTH_CLOCK_TOLERANCE_S', '-1'],
    ['AUTH_JWKS_TIMEOUT_MS', '10'],
    ['AUTH_JWKS_COOLDOWN_MS', 'often'],
    ['AUTH_JWKS_MAX_AGE_MS', '0'],
    ['AUTH_ROLES_CLAIM', 'realm access'],
    ['AUTH_CUSTOMER_CLAIM', ' '],
  ])('refuses %s=%s with an error naming the variable', (name, value) => {
    expect(configurationError({ [name]: value }).message).toContain(name);
  });

  describe('WEB_CONCURRENCY', () => {
    it('is 1 (one process, no cluster) when unset or empty, and reads a count of workers', () => {
      expect(loadConfig({}).cluster.workers).toBe(1);
      expect(loadConfig({ WEB_CONCURRENCY: '' }).cluster.workers).toBe(1);
      expect(loadConfig({ WEB_CONCURRENCY: ' 2 ' }).cluster.workers).toBe(2);
      expect(loadConfig({ WEB_CONCURRENCY: '64' }).cluster.workers).toBe(64);
    });

    it.each([
      ['0', '0'],
      ['-2', '-2'],
      ['65', '65'],
      ['1.5', '"1.5"'],
      ['two', '"two"'],
      ['auto', '"auto"'],
      ['2workers', '"2workers"'],
    ])('refuses WEB_CONCURRENCY=%s with one message that says what it takes', (value, shown) => {
      expect(configurationError({ WEB_CONCURRENCY: value }).message).toBe(
        `Invalid configuration: WEB_CONCURRENCY must be a whole number of worker processes from 1 (one process, no cluster) to 64, not ${shown}`,
      );
    });
  });

  it('names every bad variable at once', () => {
    const message = configurationError({ PORT: '70000', DATABASE_POOL_MAX: 'abc' }).message;
    expect(message).toContain('PORT');
    expect(message).toContain('DATABASE_POOL_MAX');
  });

  it('requires DATABASE_URL to be a postgres:// or postgresql:// URL', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/booking' }).database.url).toBe(
      'postgres://postgres@127.0.0.1:5432/booking',
    );
    expect(loadConfig({ DATABASE_URL: 'postgresql://db/booking' }).database.url).toBe('postgresql://db/booking');
    for (const url of ['mysql://db/booking', 'db:5432/booking', 'postgres://']) {
      expect(configurationError({ DATABASE_URL: url }).message).toContain('DATABASE_URL');
    }
  });

  describe('timeouts', () => {
    it.each([
      ['equal to', '10000'],
      ['below', '9000'],
    ])('refuses DATABASE_QUERY_TIMEOUT_MS %s DATABASE_STATEMENT_TIMEOUT_MS', (_relation, queryTimeout) => {
      const message = configurationError({
        DATABASE_STATEMENT_TIMEOUT_MS: '10000',
        DATABASE_QUERY_TIMEOUT_MS: queryTimeout,
      }).message;
      expect(message).toContain('DATABASE_QUERY_TIMEOUT_MS');
      expect(message).toContain('DATABASE_STATEMENT_TIMEOUT_MS');
    });

    it('refuses a statement timeout raised to the default query timeout', () => {
      expect(configurationError({ DATABASE_STATEMENT_TIMEOUT_MS: '12000' }).message).toContain('DATABASE_QUERY_TIMEOUT_MS');
    });

    it('accepts a query timeout just above the statement timeout', () => {
      const { database } = loadConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '10000', DATABASE_QUERY_TIMEOUT_MS: '10001' });
      expect(database.queryTimeoutMs).toBe(10_001);
    });

    it('refuses a lock timeout that is not below the statement timeout', () => {
      const message = configurationError({ DATABASE_LOCK_TIMEOUT_MS: '10000' }).message;
      expect(message).toContain('DATABASE_LOCK_TIMEOUT_MS');
    });
  });

  describe('AUTH_JWT_SECRET', () => {
    it('refuses NODE_ENV=production with neither a secret nor an identity provider', () => {
      const { message } = configurationError({ NODE_ENV: 'production' });
      expect(message).toContain('AUTH_JWT_SECRET');
      expect(message).toContain('AUTH_ISSUER');
    });

    it('refuses NODE_ENV=production with the development secret', () => {
      expect(
        configurationError({ NODE_ENV: 'production', AUTH_JWT_SECRET: DEVELOPMENT_JWT_SECRET }).message,
      ).toContain('AUTH_JWT_SECRET');
    });

    it('refuses NODE_ENV=production with a secret shorter than 32 characters', () => {
      expect(configurationError({ NODE_ENV: 'production', AUTH_JWT_SECRET: 'x'.repeat(31) }).message).toContain(
        'AUTH_JWT_SECRET',
      );
    });

    it('accepts NODE_ENV=production with a secret of 32 characters or more', () => {
      expect(loadConfig({ NODE_ENV: 'production', AUTH_JWT_SECRET: 'x'.repeat(32) }).auth.jwtSecret).toBe('x'.repeat(32));
      expect(loadConfig({ NODE_ENV: 'production', AUTH_JWT_SECRET: REAL_SECRET }).auth.jwtSecret).toBe(REAL_SECRET);
    });

    it('lets tools that check no tokens (migrations) load production configuration without the secret', () => {
      expect(() => loadConfig({ NODE_ENV: 'production' }, { requireProductionAuth: false })).not.toThrow();
      expect(loadConfig({ NODE_ENV: 'production' }, { requireProductionAuth: false }).auth.jwtSecret).toBeUndefined();
    });

    it('falls back to the development secret outside production', () => {
      expect(loadConfig({ NODE_ENV: 'development' }).auth.jwtSecret).toBe(DEVELOPMENT_JWT_SECRET);
      expect(loadConfig({ NODE_ENV: 'test' }).auth.jwtSecret).toBe(DEVELOPMENT_JWT_SECRET);
    });

    it('refuses a short secret outside production too', () => {
      expect(configurationError({ NODE_ENV: 'development', AUTH_JWT_SECRET: 'short' }).message).toContain('AUTH_JWT_SECRET');
    });
  });

  describe('identity provider', () => {
    const provider = { AUTH_ISSUER: 'https://tenant.example.auth0.com/', AUTH_AUDIENCE: 'https://booking.example.com' };

    it('discovers the key set from the issuer when AUTH_JWKS_URL is unset, with the documented defaults', () => {
      expect(loadConfig(provider).auth.identityProvider).toEqual({
        issuer: 'https://tenant.example.auth0.com/',
        jwksUrl: undefined,
        audiences: ['https://booking.example.com'],
        algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        jwksTimeoutMs: 5_000,
        jwksCooldownMs: 30_000,
        jwksMaxAgeMs: 600_000,
      });
    });

    it('accepts HS256 tokens beside the provider only with a secret set on purpose, never with the development fallback', () => {
      expect(loadConfig(provider).auth.jwtSecret).toBeUndefined();
      expect(loadConfig({ ...provider, AUTH_JWT_SECRET: REAL_SECRET }).auth.jwtSecret).toBe(REAL_SECRET);
    });

    it('lets production run on the identity provider alone, but never with the development secret beside it', () => {
      const { auth } = loadConfig({ ...provider, NODE_ENV: 'production' });
      expect(auth.identityProvider?.issuer).toBe(provider.AUTH_ISSUER);
      expect(auth.jwtSecret).toBeUndefined();
      expect(configurationError({ ...provider, NODE_ENV: 'production', AUTH_JWT_SECRET: DEVELOPMENT_JWT_SECRET }).message).toContain(
        'AUTH_JWT_SECRET must not be the development secret',
      );
    });

    it('refuses a key set without its issuer, an issuer without an audience, and an audience without an issuer', () => {
      expect(configurationError({ AUTH_JWKS_URL: 'https://id.example.com/jwks', AUTH_AUDIENCE: 'api' }).message).toContain(
        'AUTH_JWKS_URL needs AUTH_ISSUER',
      );
      expect(configurationError({ AUTH_ISSUER: provider.AUTH_ISSUER }).message).toContain('AUTH_ISSUER needs AUTH_AUDIENCE');
      expect(configurationError({ AUTH_ISSUER: provider.AUTH_ISSUER, AUTH_AUDIENCE: ' , ' }).message).toContain('AUTH_ISSUER needs AUTH_AUDIENCE');
      expect(configurationError({ AUTH_AUDIENCE: 'api' }).message).toContain('AUTH_AUDIENCE is only used with AUTH_ISSUER');
    });

    it.each([
      ['none', '"none"'],
      ['HS256', '"HS256"'],
      ['RS256, HS512', '"HS512"'],
      ['rs256', '"rs256"'],
      [',', 'AUTH_ALGORITHMS must list asymmetric algorithms'],
    ])('refuses AUTH_ALGORITHMS=%j, naming what is wrong', (algorithms, named) => {
      const { message } = configurationError({ ...provider, AUTH_ALGORITHMS: algorithms });
      expect(message).toContain('AUTH_ALGORITHMS');
      expect(message).toContain(named);
    });

    it('accepts every asymmetric algorithm jose verifies', () => {
      const all = 'RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA,Ed25519';
      expect(loadConfig({ ...provider, AUTH_ALGORITHMS: all }).auth.identityProvider?.algorithms).toEqual(all.split(','));
    });
  });

  describe('CORS_ORIGINS', () => {
    it('is off (no origin) by default and when empty', () => {
      expect(loadConfig({}).http.corsOrigins).toEqual([]);
      expect(loadConfig({ CORS_ORIGINS: '' }).http.corsOrigins).toEqual([]);
    });

    it('refuses entries that are not exact origins, naming them', () => {
      const { message } = configurationError({
        CORS_ORIGINS: 'https://ok.example.com, *, https://app.example.com/, https://app.example.com/path, app.example.com, ftp://files.example.com',
      });
      expect(message).toContain('"*", "https://app.example.com/", "https://app.example.com/path", "app.example.com", "ftp://files.example.com"');
      expect(message).not.toContain('"https://ok.example.com"');
    });
  });

  describe('DATABASE_POOLER', () => {
    const pooler = { DATABASE_URL: 'postgres://app@pgbouncer:6432/booking', DATABASE_POOLER: 'transaction' };

    it('reads the pooler and the direct URL', () => {
      const { database } = loadConfig({ ...pooler, DATABASE_DIRECT_URL: 'postgres://app@db:5432/booking', DATABASE_MIGRATE_ON_START: 'true' });
      expect(database).toMatchObject({ pooler: 'transaction', url: pooler.DATABASE_URL, directUrl: 'postgres://app@db:5432/booking', migrateOnStart: true });
    });

    it('accepts a transaction pooler without a direct URL when the service runs no migrations', () => {
      expect(loadConfig(pooler).database.directUrl).toBeUndefined();
    });

    it('refuses migrations at startup through a transaction pooler without a direct URL', () => {
      expect(configurationError({ ...pooler, DATABASE_MIGRATE_ON_START: 'true' }).message).toContain('needs DATABASE_DIRECT_URL');
    });

    it('refuses a read URL that is not a postgres:// URL, naming it by position only', () => {
      const { message } = configurationError({ DATABASE_READ_URLS: 'postgres://r@a/b, mysql://user:secret@b/c' });
      expect(message).toContain('DATABASE_READ_URLS entries 2 are not postgres:// URLs');
      expect(message).not.toContain('secret');
    });

    it('refuses a transaction pooler without DATABASE_URL, and an unknown pooler mode', () => {
      expect(configurationError({ DATABASE_POOLER: 'transaction' }).message).toContain('needs DATABASE_URL');
      expect(configurationError({ DATABASE_POOLER: 'session' }).message).toContain('DATABASE_POOLER');
      expect(configurationError({ DATABASE_DIRECT_URL: 'mysql://db' }).message).toContain('DATABASE_DIRECT_URL must be a postgres:// URL');
    });
  });

  describe('REDIS_SENTINELS', () => {
    it('reads the sentinels, the master group name and the passwords', () => {
      const { redis } = loadConfig({
        REDIS_SENTINELS: 'sentinel-1:26379, 10.0.0.7:26380,[::1]:26381',
        REDIS_SENTINEL_NAME: 'booking',
        REDIS_PASSWORD: 'master-secret',
        REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
      });
      expect(redis.url).toBeUndefined();
      expect(redis.sentinel).toEqual({
        sentinels: [
          { host: 'sentinel-1', port: 26379 },
          { host: '10.0.0.7', port: 26380 },
          { host: '::1', port: 26381 },
        ],
        name: 'booking',
        password: 'master-secret',
        sentinelPassword: 'sentinel-secret',
      });
    });

    it('refuses REDIS_URL and REDIS_SENTINELS together, a missing group name, a bad entry, and Sentinel settings without sentinels', () => {
      expect(configurationError({ REDIS_URL: 'redis://cache:6379', REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' }).message).toContain('not both');
      expect(configurationError({ REDIS_SENTINELS: 's:26379' }).message).toContain('needs REDIS_SENTINEL_NAME');
      expect(configurationError({ REDIS_SENTINELS: 's:26379,s2', REDIS_SENTINEL_NAME: 'm' }).message).toContain('"s2" is not host:port');
      expect(configurationError({ REDIS_SENTINELS: 's:70000', REDIS_SENTINEL_NAME: 'm' }).message).toContain('"s:70000"');
      expect(configurationError({ REDIS_SENTINEL_NAME: 'm' }).message).toContain('REDIS_SENTINEL_NAME is only used with REDIS_SENTINELS');
    });
  });

  describe('TRUST_PROXY', () => {
    const trustProxy = (value: string) => loadConfig({ TRUST_PROXY: value }).http.trustProxy;

    it('trusts no proxy when unset, empty, false or 0', () => {
      expect(loadConfig({}).http.trustProxy).toBe(false);
      for (const value of ['', 'false', '0']) expect(trustProxy(value)).toBe(false);
    });

    it('reads a hop count', () => {
      expect(trustProxy('1')).toBe(1);
      expect(trustProxy(' 2 ')).toBe(2);
    });

    it('reads addresses, CIDR ranges and the named ranges, comma separated', () => {
      expect(trustProxy('loopback, 10.0.0.0/8,192.168.1.7, fd00::/8, ::1')).toEqual(['loopback', '10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1']);
      expect(trustProxy('uniquelocal,linklocal')).toEqual(['uniquelocal', 'linklocal']);
    });

    it('refuses to trust every peer, since any client could then choose its own address', () => {
      for (const value of ['true', '*']) expect(configurationError({ TRUST_PROXY: value }).message).toMatch(/TRUST_PROXY=.* would believe any client/);
    });

    it('names the entries that are not addresses, ranges or named ranges', () => {
      const { message } = configurationError({ TRUST_PROXY: '10.0.0.1, 300.1.1.1, 10.0.0.0/33, lb.internal, 10.0.0.0/8/1' });
      expect(message).toContain('"300.1.1.1", "10.0.0.0/33", "lb.internal", "10.0.0.0/8/1"');
      expect(message).not.toContain('"10.0.0.1"');
    });

    it('refuses an absurd hop count', () => {
      expect(configurationError({ TRUST_PROXY: '11' }).message).toContain('TRUST_PROXY=11');
    });
  });

  describe('booleans', () => {
    it.each([
      ['true', true],
      ['TRUE', true],
      ['1', true],
      ['yes', true],
      ['false', false],
      ['0', false],
      ['no', false],
      [' False ', false],
    ])('reads DATABASE_MIGRATE_ON_START=%j as %s', (value, expected) => {
      expect(loadConfig({ DATABASE_MIGRATE_ON_START: value }).database.migrateOnStart).toBe(expected);
    });
  });

  it('ignores variables it does not know', () => {
    expect(() => loadConfig({ SOMETHING_ELSE: 'x', PATH: '/usr/bin' })).not.toThrow();
  });
});
