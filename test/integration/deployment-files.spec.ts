import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { EnvironmentVariables } from '../../src/config/environment';

/**
 * Docker does not run on the development machines, so these checks keep docker-compose.yml and
 * the Dockerfile consistent with the code that reads them.
 */
const root = path.resolve(__dirname, '..', '..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, unknown> | string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: unknown; disable?: boolean };
  restart?: string;
  stop_grace_period?: string;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

const compose = parse(read('docker-compose.yml')) as ComposeFile;
const service = (name: string): ComposeService => {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no "${name}" service`);
  return found;
};

function environmentNames(definition: ComposeService): string[] {
  const environment = definition.environment ?? {};
  if (Array.isArray(environment)) return environment.map((entry) => entry.split('=')[0]!);
  return Object.keys(environment);
}

function environmentValue(definition: ComposeService, name: string): string | undefined {
  const environment = definition.environment ?? {};
  if (Array.isArray(environment)) {
    const entry = environment.find((item) => item.split('=')[0] === name);
    return entry?.slice(name.length + 1);
  }
  const value = environment[name];
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
}

/** The instructions of the Dockerfile's last stage, continuation lines joined. */
function finalStage(dockerfile: string): string[] {
  const instructions = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const lastFrom = instructions.map((line) => /^FROM\s/i.test(line)).lastIndexOf(true);
  return instructions.slice(lastFrom);
}

describe('docker-compose.yml', () => {
  const declared = new Set(Object.keys(new EnvironmentVariables()));

  it.each(['api', 'migrate'])('sets only environment variables the service declares (%s)', (name) => {
    const names = environmentNames(service(name));
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((variable) => !declared.has(variable))).toEqual([]);
  });

  it('does not give the JWT secret to the migrate service, which checks no tokens', () => {
    expect(environmentValue(service('migrate'), 'AUTH_JWT_SECRET')).toBeUndefined();
  });

  it.each(['api'])('requires AUTH_JWT_SECRET from the environment in production (%s)', (name) => {
    expect(environmentValue(service(name), 'NODE_ENV')).toBe('production');
    expect(environmentValue(service(name), 'AUTH_JWT_SECRET')).toMatch(/^\$\{AUTH_JWT_SECRET:\?.+\}$/);
  });

  it('points api and migrate at the compose postgres service', () => {
    for (const name of ['api', 'migrate']) {
      expect(environmentValue(service(name), 'DATABASE_URL')).toMatch(/^postgres(ql)?:\/\/\S+@postgres:5432\/\S+$/);
    }
  });

  it('starts the api only after postgres is healthy and the migrations succeeded', () => {
    expect(service('api').depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
    });
  });

  it('gives every long-running service a healthcheck', () => {
    const longRunning = Object.entries(compose.services).filter(([name]) => name !== 'migrate');
    expect(longRunning.map(([name]) => name).sort()).toEqual(['api', 'postgres', 'redis']);
    for (const [name, definition] of longRunning) {
      expect({ name, test: definition.healthcheck?.test }).toEqual({ name, test: expect.anything() });
      expect({ name, disabled: definition.healthcheck?.disable ?? false }).toEqual({ name, disabled: false });
    }
  });

  it('checks the api through /health/ready on the port it listens on', () => {
    const test = JSON.stringify(service('api').healthcheck?.test);
    const port = environmentValue(service('api'), 'PORT') ?? String(new EnvironmentVariables().PORT);
    expect(test).toContain(`:${port}/health/ready`);
  });

  it('runs migrations once with the compiled data source', () => {
    const migrate = service('migrate');
    expect(migrate.build).toBeDefined();
    expect(migrate.restart ?? 'no').toBe('no');
    expect(migrate.command).toEqual(['node', 'node_modules/typeorm/cli.js', 'migration:run', '-d', 'dist/ormconfig.js']);
    // dist/ormconfig.js is what `npm run build` makes of ormconfig.ts.
    const buildConfig = JSON.parse(read('tsconfig.build.json')) as { include: string[] };
    expect(buildConfig.include).toContain('ormconfig.ts');
    expect(existsSync(path.join(root, 'ormconfig.ts'))).toBe(true);
  });

  it('gives the api time for a graceful shutdown', () => {
    expect(service('api').build).toBeDefined();
    expect(service('api').stop_grace_period).toBe('30s');
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const runtime = finalStage(dockerfile);

  it('runs the same command as the start:prod script', () => {
    const cmd = runtime.filter((line) => /^CMD\s/i.test(line)).at(-1);
    expect(cmd).toBeDefined();
    const argv = JSON.parse(cmd!.replace(/^CMD\s+/i, '')) as string[];
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(argv.join(' ')).toBe(scripts['start:prod']);
  });

  it('starts a file that the build compiles from src/', () => {
    const cmd = runtime.filter((line) => /^CMD\s/i.test(line)).at(-1)!;
    const entry = (JSON.parse(cmd.replace(/^CMD\s+/i, '')) as string[]).at(-1);
    // tsconfig: rootDir ".", outDir "dist", so dist/src/main.js comes from src/main.ts.
    expect(entry).toMatch(/^dist\/.+\.js$/);
    expect(existsSync(path.join(root, entry!.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(true);
  });

  it('builds on node:24-bookworm-slim and runs as the non-root node user on port 3000', () => {
    const froms = dockerfile.split(/\r?\n/).filter((line) => /^FROM\s/i.test(line.trim()));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^FROM node:24-bookworm-slim\b/);
    expect(runtime.filter((line) => /^USER\s/i.test(line)).at(-1)).toBe('USER node');
    expect(runtime).toContain('EXPOSE 3000');
  });

  it('installs npm 11 before npm ci, so package.json allowScripts is honoured', () => {
    const lines = dockerfile.split(/\r?\n/).map((line) => line.trim());
    const npm11 = lines.findIndex((line) => /^RUN npm install -g npm@11\b/.test(line));
    const ci = lines.findIndex((line) => /^RUN npm ci\b/.test(line));
    expect(npm11).toBeGreaterThanOrEqual(0);
    expect(ci).toBeGreaterThan(npm11);
  });
});

describe('the Node.js runtime', () => {
  it('is the same major everywhere: the Docker image, package.json engines, .nvmrc and the script CI uses', () => {
    const major = read('.nvmrc').trim();
    expect(major).toBe('24');
    const froms = read('Dockerfile').split(/\r?\n/).filter((line) => /^FROM\s/i.test(line.trim()));
    for (const from of froms) expect(from).toMatch(new RegExp(`^FROM node:${major}-`));
    expect((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node).toMatch(new RegExp(`^>=${major}\\.`));
    expect(read('scripts/use-node.sh')).toContain(`REQUIRED_NODE_MAJOR=${major}\n`);
    expect(read('.ci/run')).toMatch(/^\. scripts\/use-node\.sh$/m);
  });

  it('runs this suite', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(Number(read('.nvmrc').trim()));
  });
});

describe('.dockerignore', () => {
  it('keeps local installs, builds and data out of the build context', () => {
    const entries = read('.dockerignore')
      .split(/\r?\n/)
      .map((line) => line.trim().replace(/\/$/, ''));
    for (const entry of ['node_modules', 'dist', '.data', '.git', 'coverage']) expect(entries).toContain(entry);
  });
});
