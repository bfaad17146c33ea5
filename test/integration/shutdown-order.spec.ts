import { DataSource } from 'typeorm';
import { JobRunner } from '../../src/jobs/job-runner';
import { WebhookRelay } from '../../src/webhooks/webhook-relay';
import { startTestApp } from '../support/test-app';

/**
 * Nest destroys the database pool in TypeORM's onApplicationShutdown, and runs the modules'
 * onApplicationShutdown hooks in an order of its own: work that needs the pool to finish (a
 * job's steps, a webhook attempt's outcome) must stop and be awaited before any of them.
 */
describe('the order of the shutdown hooks', () => {
  const order: string[] = [];
  const originals = {
    destroy: DataSource.prototype.destroy,
    jobs: JobRunner.prototype.beforeApplicationShutdown,
    relay: WebhookRelay.prototype.beforeApplicationShutdown,
  };

  beforeAll(() => {
    DataSource.prototype.destroy = async function (this: DataSource) {
      order.push('database pool destroyed');
      return originals.destroy.call(this);
    };
    JobRunner.prototype.beforeApplicationShutdown = async function (this: JobRunner) {
      await originals.jobs.call(this);
      order.push('jobs stopped');
    };
    WebhookRelay.prototype.beforeApplicationShutdown = async function (this: WebhookRelay) {
      await originals.relay.call(this);
      order.push('webhook attempts finished');
    };
  });
  afterAll(() => {
    DataSource.prototype.destroy = originals.destroy;
    JobRunner.prototype.beforeApplicationShutdown = originals.jobs;
    WebhookRelay.prototype.beforeApplicationShutdown = originals.relay;
  });

  it('should stop the periodic jobs and finish the webhook attempts before the database pool is destroyed', async () => {
    const t = await startTestApp({});
    await t.close();

    const destroyed = order.indexOf('database pool destroyed');
    expect(destroyed).toBeGreaterThan(-1);
    expect(order.indexOf('jobs stopped')).toBeGreaterThan(-1);
    expect(order.indexOf('jobs stopped')).toBeLessThan(destroyed);
    expect(order.indexOf('webhook attempts finished')).toBeGreaterThan(-1);
    expect(order.indexOf('webhook attempts finished')).toBeLessThan(destroyed);
  });
});
