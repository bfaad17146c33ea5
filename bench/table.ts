import type { ServiceStep } from './scenarios';
import type { MemoryStats } from './memory';
import { type BenchReport, isPgbenchResult } from './report';

const MIB = 1024 * 1024;

/** The report as plain-text tables for the terminal (stdout). */
export function formatReportTable(report: BenchReport, files: { reportFile: string; chartFile: string; serviceLog: string }): string {
  const { machine, options, git, service, memory } = report;
  const lines: string[] = [];
  const commit = git.commit ? `${git.commit}${git.dirty ? ' (dirty)' : ''}` : 'unknown';
  lines.push(
    `match-booking bench (${options.mode}, ${options.stepSeconds} s per step) ${report.startedAt}, commit ${commit}`,
    `${machine.cpuCount} × ${machine.cpuModel}, ${(machine.totalMemoryBytes / 1024 ** 3).toFixed(1)} GiB, Node ${machine.node}, ` +
      `PostgreSQL ${machine.postgresServer} (${options.database.source}, ${options.database.address}), ${machine.pgbench ?? 'no pgbench'}`,
    `Service: pool ${options.service.poolMax}, LOG_LEVEL=${options.service.logLevel}, Redis ${options.service.redis ? 'on' : 'off'}` +
      (options.service.pgbouncer ? ', through PgBouncer (transaction mode; pgbench direct)' : ''),
    '',
  );

  const memoryOf = (label: string): MemoryStats | undefined => memory.perScenario[label];
  const serviceRows = [
    ...service.hot.map((step) => loadRow('hot', step, memoryOf(step.label))),
    ...service.spread.map((step) => loadRow('spread', step, memoryOf(step.label))),
    loadRow('mixed: hot half', service.mixed.hot, memoryOf(service.mixed.label)),
    loadRow('mixed: spread half', service.mixed.spread, memoryOf(service.mixed.label)),
    // Its rate would mix 1,000 bookings with 9,000 refusals; the line below the table gives its times.
    loadRow('sell-out', service.sellOut, memoryOf(service.sellOut.label), false),
  ];
  lines.push(
    'Service (HTTP, autocannon)',
    ...table(['scenario', 'conns', 'bookings/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'socket err', 'timeouts', 'RSS peak MiB', 'RSS mean MiB', 'CPU ms/booking'], serviceRows),
    '',
  );

  const tracingRows = report.tracing.map((step) => [
    step.label,
    String(step.connections),
    step.bookingsPerSecond.toFixed(1),
    step.relativeThroughput === null ? '-' : step.relativeThroughput.toFixed(2),
    step.p50Ms.toFixed(2),
    step.p99Ms.toFixed(2),
    step.cpu.msPerBooking === null ? 'n/a' : step.cpu.msPerBooking.toFixed(3),
    String(step.exports),
    (step.exportedBytes / 1024).toFixed(0),
  ]);
  lines.push(
    'Tracing cost (spread, a fresh service per row; spans over OTLP/HTTP protobuf to a local sink)',
    ...table(['setting', 'conns', 'bookings/s', 'vs off', 'p50 ms', 'p99 ms', 'CPU ms/booking', 'exports', 'KiB sent'], tracingRows),
    '',
  );

  if (report.pgbench.available) {
    const comparisons = report.comparison;
    const pgbenchRows = (['hot', 'spread'] as const).flatMap((workload) =>
      report.pgbench.available
        ? report.pgbench[workload].map((step) => {
            const ratio = comparisons[workload].find((row) => row.connections === step.clients)?.ratio;
            if (!isPgbenchResult(step)) return [workload, String(step.clients), `skipped: ${step.skipped}`];
            return [
              workload,
              String(step.clients),
              step.tps.toFixed(1),
              step.latency.p50Ms.toFixed(2),
              step.latency.p99Ms.toFixed(2),
              step.latency.maxMs.toFixed(2),
              String(step.abortedClients + step.failedTransactions),
              ratio === null || ratio === undefined ? 'n/a' : ratio.toFixed(2),
            ];
          })
        : [],
    );
    lines.push('pgbench (the same transaction, straight to PostgreSQL)', ...table(['workload', 'clients', 'tps', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'service/pgbench'], pgbenchRows), '');
  } else {
    lines.push(`pgbench: skipped (${report.pgbench.skipped})`, '');
  }

  const sellOut = service.sellOut;
  const fairness = report.fairness.value === null ? 'n/a' : report.fairness.value.toFixed(2);
  lines.push(
    `Sell-out: ${sellOut.requests} requests at ${sellOut.connections} connections, capacity ${sellOut.capacity}: ` +
      `${sellOut.statusCounts['201'] ?? 0} × 201, ${sellOut.statusCounts['409'] ?? 0} × 409, ${sellOut.bookedSlots} slots booked; ` +
      `last slot after ${sellOut.lastBookingSeconds.toFixed(2)} s, all answered in ${sellOut.durationSeconds.toFixed(2)} s`,
    `Fairness at ${service.mixed.spread.connections} connections (mixed spread p99 / spread-only p99): ${fairness} (target ≤ ${report.fairness.target})`,
    `Service memory (RSS): idle ${mib(memory.idleBytes)} MiB, under load peak ${mib(memory.overall.peakBytes)} MiB, mean ${mib(memory.overall.meanBytes)} MiB`,
  );
  const failures = report.checks.filter((check) => !check.passed);
  lines.push(`Checks: ${report.checks.length - failures.length} passed, ${failures.length} failed`);
  for (const failure of failures) lines.push(`  FAILED [${failure.scenario}] ${failure.name}: ${failure.detail}`);
  lines.push(`Report:      ${files.reportFile}`, `Chart:       ${files.chartFile}`, `Service log: ${files.serviceLog}`);
  return `${lines.join('\n')}\n`;
}

function loadRow(scenario: string, step: ServiceStep, memory: MemoryStats | undefined, showRate = true): string[] {
  return [
    scenario,
    String(step.connections),
    showRate ? step.bookingsPerSecond.toFixed(1) : '-',
    step.latency.p50Ms.toFixed(2),
    step.latency.p99Ms.toFixed(2),
    step.latency.maxMs.toFixed(2),
    String(step.errors.non2xx),
    String(step.errors.socketErrors),
    String(step.errors.timeouts),
    mib(memory?.peakBytes ?? null),
    mib(memory?.meanBytes ?? null),
    step.cpu.msPerBooking === null ? 'n/a' : step.cpu.msPerBooking.toFixed(3),
  ];
}

function mib(bytes: number | null): string {
  return bytes === null || bytes === 0 ? 'n/a' : (bytes / MIB).toFixed(1);
}

/** Left-aligned first column, right-aligned numbers; a row shorter than the header runs on (a skip reason). */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.filter((row) => row.length === header.length).map((row) => row[column]!.length)));
  const format = (row: string[]): string =>
    row.length === header.length
      ? row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')
      : row.map((cell, column) => (column < 2 ? (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)) : cell)).join('  ');
  return [format(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(format)];
}
