import { pgbenchScript } from '../../bench/pgbench-script';

/** npm run bench runs the service's reservation statements through pgbench; they must stay expressible as a pgbench script. */
describe('the benchmark pgbench script', () => {
  it.each(['hot', 'spread'] as const)('should be built from the reservation statements for the %s workload', (workload) => {
    const script = pgbenchScript(workload);
    expect(script).toContain('FOR UPDATE');
    expect(script).toContain('INSERT INTO bookings');
    expect(script).not.toMatch(/\$\d/);
  });
});
