import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app';
import { PROBLEM_FIELDS } from '../../src/errors/problem-types';

interface OpenApiResponse {
  description?: string;
  content?: Record<string, { schema?: { $ref?: string } }>;
}

interface OpenApiOperation {
  summary?: string;
  security?: Array<Record<string, unknown>>;
  parameters?: Array<{ in: string; name: string }>;
  requestBody?: { content: Record<string, { schema?: { $ref?: string } }> };
  responses: Record<string, OpenApiResponse>;
}

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: {
    schemas: Record<string, { required?: string[]; properties?: Record<string, unknown> }>;
    securitySchemes?: Record<string, { type: string; scheme?: string; bearerFormat?: string }>;
  };
}

const PROBLEM_REF = '#/components/schemas/ProblemResponse';

/** What the API answers, per operation: its success code and every error it can give. */
const EXPECTED_OPERATIONS: Array<{ method: string; path: string; responses: string[]; body?: string; query?: string[] }> = [
  { method: 'post', path: '/api/v1/matches', responses: ['201', '400', '401', '403', '413', '415', '429'], body: 'CreateMatchDto' },
  { method: 'get', path: '/api/v1/matches', responses: ['200', '400', '401'], query: ['from', 'to', 'limit', 'cursor'] },
  { method: 'get', path: '/api/v1/matches/{id}', responses: ['200', '400', '401', '404'] },
  {
    method: 'patch',
    path: '/api/v1/matches/{id}',
    responses: ['200', '400', '401', '403', '404', '409', '413', '415', '429'],
    body: 'UpdateMatchDto',
  },
  {
    method: 'post',
    path: '/api/v1/matches/{id}/bookings',
    responses: ['201', '400', '401', '404', '409', '413', '415', '429'],
    body: 'CreateBookingDto',
  },
  { method: 'get', path: '/api/v1/bookings', responses: ['200', '400', '401'], query: ['matchId', 'status', 'limit', 'cursor'] },
  { method: 'get', path: '/api/v1/bookings/{id}', responses: ['200', '400', '401', '404'] },
  { method: 'post', path: '/api/v1/bookings/{id}/cancel', responses: ['200', '400', '401', '404', '429'] },
  { method: 'get', path: '/health/live', responses: ['200'] },
  { method: 'get', path: '/health/ready', responses: ['200'] },
];

describe('API documentation', () => {
  let t: TestApp;
  let document: OpenApiDocument;

  beforeAll(async () => {
    t = await startTestApp();
    document = (await request(t.server).get('/docs-json').expect(200)).body as OpenApiDocument;
  });

  afterAll(async () => {
    await t.close();
  });

  function allOperations(): Array<{ method: string; path: string; operation: OpenApiOperation }> {
    return Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations).map(([method, operation]) => ({ method, path, operation })),
    );
  }

  it('should serve the Swagger UI as HTML at GET /docs', async () => {
    const response = await request(t.server).get('/docs');

    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.text).toContain('swagger-ui');
  });

  it('should serve an OpenAPI 3 document as JSON at GET /docs-json', async () => {
    const response = await request(t.server).get('/docs-json');

    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.body.openapi).toMatch(/^3\./);
  });

  it.each(EXPECTED_OPERATIONS)('should describe $method $path with responses $responses', ({ method, path, responses }) => {
    const operation = document.paths[path]?.[method];

    expect(operation).toBeDefined();
    expect(operation?.summary).toEqual(expect.any(String));
    expect(Object.keys(operation?.responses ?? {})).toEqual(expect.arrayContaining(responses));
  });

  it.each(EXPECTED_OPERATIONS.filter((operation) => operation.body !== undefined))(
    'should describe the JSON request body of $method $path with the $body schema',
    ({ method, path, body }) => {
      const operation = document.paths[path]?.[method];

      expect(operation?.requestBody?.content['application/json']?.schema?.$ref).toBe(`#/components/schemas/${body}`);
    },
  );

  it('should describe the request body schemas field by field, with the required ones', () => {
    const { CreateMatchDto, UpdateMatchDto, CreateBookingDto } = document.components.schemas;

    expect(Object.keys(CreateMatchDto?.properties ?? {}).sort()).toEqual(['capacity', 'maxSlotsPerCustomer', 'startsAt', 'title']);
    expect(CreateMatchDto?.required?.sort()).toEqual(['capacity', 'startsAt', 'title']);
    expect(Object.keys(UpdateMatchDto?.properties ?? {}).sort()).toEqual(['capacity', 'maxSlotsPerCustomer', 'startsAt', 'title']);
    expect(UpdateMatchDto?.required ?? []).toEqual([]);
    expect(Object.keys(CreateBookingDto?.properties ?? {})).toEqual(['slots']);
    expect(CreateBookingDto?.required).toEqual(['slots']);
  });

  it.each(EXPECTED_OPERATIONS.filter((operation) => operation.query !== undefined))(
    'should describe the query parameters of $method $path',
    ({ method, path, query }) => {
      const parameters = (document.paths[path]?.[method]?.parameters ?? []).filter((parameter) => parameter.in === 'query');

      expect(parameters.map((parameter) => parameter.name).sort()).toEqual([...(query ?? [])].sort());
    },
  );

  it('should describe the optional Idempotency-Key header on exactly the writes that take one', () => {
    const withKey = allOperations()
      .filter(({ operation }) => (operation.parameters ?? []).some((parameter) => parameter.in === 'header' && parameter.name === 'Idempotency-Key'))
      .map(({ method, path }) => `${method} ${path}`);

    expect(withKey.sort()).toEqual([
      'post /api/v1/bookings/{id}/cancel',
      'post /api/v1/bookings/{id}/reschedule',
      'post /api/v1/holds/{id}/confirm',
      'post /api/v1/matches/{id}/bookings',
      'post /api/v1/matches/{id}/holds',
      'post /api/v1/matches/{id}/waitlist',
    ]);
  });

  it('should describe the problem schema with type, title, status and detail required', () => {
    const problem = document.components.schemas.ProblemResponse;

    expect(problem?.required?.sort()).toEqual(['detail', 'status', 'title', 'type']);
    expect(Object.keys(problem?.properties ?? {})).toEqual(
      expect.arrayContaining(['type', 'title', 'status', 'detail', 'instance', 'errors', 'availableSlots', 'bookedSlots']),
    );
    // Every extension member of problem-types.ts is documented.
    expect(Object.keys(problem?.properties ?? {})).toEqual(expect.arrayContaining(Object.keys(PROBLEM_FIELDS)));
  });

  it('should describe every error response of every API operation as application/problem+json with the problem schema', () => {
    const apiOperations = allOperations().filter(({ path }) => path.startsWith('/api/v1/'));
    expect(apiOperations.length).toBeGreaterThanOrEqual(8);

    const errorResponses = apiOperations.flatMap(({ method, path, operation }) =>
      Object.entries(operation.responses)
        .filter(([status]) => Number(status) >= 400)
        .map(([status, response]) => ({ operation: `${method} ${path} ${status}`, ref: response.content?.['application/problem+json']?.schema?.$ref })),
    );

    expect(errorResponses.filter(({ ref }) => ref !== PROBLEM_REF)).toEqual([]);
  });

  it('should describe 429 (rate-limited) on every API write operation and on no read or health check', () => {
    const operations = allOperations();
    const writes = operations.filter(({ method, path }) => path.startsWith('/api/v1/') && ['post', 'put', 'patch', 'delete'].includes(method));
    expect(writes.length).toBeGreaterThanOrEqual(4);

    expect(writes.filter(({ operation }) => operation.responses['429'] === undefined).map(({ method, path }) => `${method} ${path}`)).toEqual([]);
    expect(operations.filter((operation) => !writes.includes(operation) && operation.operation.responses['429'] !== undefined)).toEqual([]);
  });

  it('should give every operation a summary', () => {
    const withoutSummary = allOperations()
      .filter(({ operation }) => typeof operation.summary !== 'string' || operation.summary.length === 0)
      .map(({ method, path }) => `${method} ${path}`);

    expect(withoutSummary).toEqual([]);
  });

  it('should declare bearer JWT authentication on every API operation, and none on the health checks', () => {
    expect(document.components.securitySchemes?.bearer).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    const apiWithoutBearer = allOperations()
      .filter(({ path }) => path.startsWith('/api/v1/'))
      .filter(({ operation }) => !operation.security?.some((requirement) => 'bearer' in requirement))
      .map(({ method, path }) => `${method} ${path}`);

    expect(apiWithoutBearer).toEqual([]);
    expect(document.paths['/health/live']?.get?.security).toBeUndefined();
    expect(document.paths['/health/ready']?.get?.security).toBeUndefined();
  });
});
