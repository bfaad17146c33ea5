import { type BenchReport, isPgbenchResult } from './report';

/**
 * The report as one self-contained SVG (no fonts, scripts or links to load), drawn by hand so
 * the bench needs no charting dependency: grouped bars per concurrency of the service and of
 * pgbench, throughput in one panel and p99 latency in the other. It has a white background, so
 * it stays readable in GitHub's dark theme too.
 */

interface Series {
  name: string;
  color: string;
  /** One value per concurrency; null where there is none (pgbench skipped). */
  values: Array<number | null>;
}

interface Panel {
  title: string;
  axisLabel: string;
  series: Series[];
  format: (value: number) => string;
}

const WIDTH = 960;
const PANEL_HEIGHT = 300;
const MARGIN = { left: 80, right: 24 };
const FONT = 'font-family="system-ui, -apple-system, \'Segoe UI\', Helvetica, Arial, sans-serif"';
const COLORS = { serviceHot: '#1d4ed8', pgbenchHot: '#93c5fd', serviceSpread: '#c2410c', pgbenchSpread: '#fdba74' };

export function renderChart(report: BenchReport): string {
  const concurrencies = report.options.concurrencies;
  const pgbenchValues = (workload: 'hot' | 'spread', pick: (tps: number, p99: number) => number): Array<number | null> =>
    concurrencies.map((clients) => {
      if (!report.pgbench.available) return null;
      const step = report.pgbench[workload].find((run) => run.clients === clients);
      return step && isPgbenchResult(step) ? pick(step.tps, step.latency.p99Ms) : null;
    });
  const serviceValues = (workload: 'hot' | 'spread', pick: (perSecond: number, p99: number) => number): Array<number | null> =>
    concurrencies.map((connections) => {
      const step = report.service[workload].find((run) => run.connections === connections);
      return step ? pick(step.bookingsPerSecond, step.latency.p99Ms) : null;
    });

  const series = (pick: (rate: number, p99: number) => number): Series[] => [
    { name: 'service, hot match', color: COLORS.serviceHot, values: serviceValues('hot', pick) },
    { name: 'pgbench, hot match', color: COLORS.pgbenchHot, values: pgbenchValues('hot', pick) },
    { name: 'service, spread (1,000 matches)', color: COLORS.serviceSpread, values: serviceValues('spread', pick) },
    { name: 'pgbench, spread (1,000 matches)', color: COLORS.pgbenchSpread, values: pgbenchValues('spread', pick) },
  ];
  const panels: Panel[] = [
    {
      title: 'Throughput: bookings per second (higher is better)',
      axisLabel: 'bookings/s',
      series: series((rate) => rate),
      format: (value) => Math.round(value).toLocaleString('en-US'),
    },
    {
      title: 'p99 latency in milliseconds (lower is better)',
      axisLabel: 'p99 ms',
      series: series((_rate, p99) => p99),
      format: (value) => (value >= 100 ? Math.round(value).toLocaleString('en-US') : value === 0 ? '0' : value.toFixed(1)),
    },
  ];

  const headerLines = subtitle(report);
  const footerLines = footer(report);
  const headerHeight = 58 + headerLines.length * 18 + 24;
  const footerHeight = 16 + footerLines.length * 20;
  const height = headerHeight + panels.length * PANEL_HEIGHT + footerHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT} font-size="13" fill="#111827">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    text(MARGIN.left, 30, `match-booking: one booking of 1 slot per request, by concurrent connections`, { size: 18, weight: 'bold' }),
    ...headerLines.map((line, index) => text(MARGIN.left, 52 + index * 18, line, { size: 12, color: '#4b5563' })),
    legend(panels[0]!.series, MARGIN.left, 52 + headerLines.length * 18 + 12),
  ];
  panels.forEach((panel, index) => parts.push(renderPanel(panel, concurrencies, headerHeight + index * PANEL_HEIGHT)));
  footerLines.forEach((line, index) =>
    parts.push(
      text(MARGIN.left, headerHeight + panels.length * PANEL_HEIGHT + 16 + index * 20, line, {
        size: 12,
        // A chart of a run whose checks failed must not pass for a good one at a glance.
        color: line.startsWith('Checks:') && !report.passed ? '#b91c1c' : '#374151',
        ...(line.startsWith('Checks:') && !report.passed ? { weight: 'bold' as const } : {}),
      }),
    ),
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function renderPanel(panel: Panel, concurrencies: readonly number[], top: number): string {
  const plotTop = top + 34;
  const plotBottom = top + PANEL_HEIGHT - 44;
  const plotLeft = MARGIN.left;
  const plotRight = WIDTH - MARGIN.right;
  const values = panel.series.flatMap((series) => series.values).filter((value): value is number => value !== null);
  const { max, step } = niceScale(Math.max(0, ...values));
  const y = (value: number): number => plotBottom - (value / max) * (plotBottom - plotTop);
  const parts: string[] = [text(plotLeft, top + 20, panel.title, { size: 14, weight: 'bold' })];

  for (let index = 0; index * step <= max + step / 2; index += 1) {
    const tick = index * step;
    const ty = y(tick);
    parts.push(`<line x1="${plotLeft}" y1="${ty.toFixed(1)}" x2="${plotRight}" y2="${ty.toFixed(1)}" stroke="${tick === 0 ? '#6b7280' : '#e5e7eb'}" stroke-width="1"/>`);
    parts.push(text(plotLeft - 8, ty + 4, panel.format(tick), { size: 11, anchor: 'end', color: '#4b5563' }));
  }
  const axisY = (plotTop + plotBottom) / 2;
  parts.push(
    `<text x="${plotLeft - 60}" y="${axisY}" font-size="12" fill="#4b5563" text-anchor="middle" transform="rotate(-90 ${plotLeft - 60} ${axisY})">${escapeXml(panel.axisLabel)}</text>`,
  );

  const groupWidth = (plotRight - plotLeft) / concurrencies.length;
  const barWidth = Math.min(44, (groupWidth * 0.8) / panel.series.length);
  concurrencies.forEach((connections, group) => {
    const groupCenter = plotLeft + groupWidth * (group + 0.5);
    const firstBar = groupCenter - (barWidth * panel.series.length) / 2;
    panel.series.forEach((series, index) => {
      const x = firstBar + index * barWidth;
      const value = series.values[group] ?? null;
      const labelX = x + barWidth / 2;
      if (value === null) {
        parts.push(text(labelX, plotBottom - 6, 'n/a', { size: 10, anchor: 'middle', color: '#9ca3af' }));
        return;
      }
      const barTop = y(value);
      parts.push(
        `<rect x="${(x + 1).toFixed(1)}" y="${barTop.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${Math.max(0, plotBottom - barTop).toFixed(1)}" fill="${series.color}"><title>${escapeXml(`${series.name}, ${connections} connections: ${panel.format(value)} ${panel.axisLabel}`)}</title></rect>`,
      );
      parts.push(text(labelX, barTop - 4, panel.format(value), { size: 10, anchor: 'middle', color: '#374151' }));
    });
    parts.push(text(groupCenter, plotBottom + 18, `${connections} connection${connections === 1 ? '' : 's'}`, { size: 12, anchor: 'middle' }));
  });
  return parts.join('\n');
}

function legend(series: Series[], left: number, baseline: number): string {
  let x = left;
  return series
    .map((entry) => {
      const item = `<rect x="${x}" y="${baseline - 11}" width="14" height="14" fill="${entry.color}"/>${text(x + 20, baseline, entry.name, { size: 12 })}`;
      x += 28 + entry.name.length * 6.6;
      return item;
    })
    .join('\n');
}

function subtitle(report: BenchReport): string[] {
  const { machine, options, git } = report;
  const commit = git.commit ? `commit ${git.commit}${git.dirty ? ' (dirty)' : ''}` : 'no git commit';
  const pgbench = machine.pgbench === null ? 'no pgbench' : `pgbench ${/\d+(\.\d+)+/.exec(machine.pgbench)?.[0] ?? machine.pgbench}`;
  return [
    [
      `${machine.cpuCount} × ${machine.cpuModel}, ${(machine.totalMemoryBytes / 1024 ** 3).toFixed(0)} GiB`,
      `Node ${machine.node}`,
      `PostgreSQL ${machine.postgresServer.split(' ')[0]} (${options.database.source === 'embedded' ? 'embedded' : 'DATABASE_URL'})`,
      pgbench,
    ].join(' · '),
    [
      `${options.mode} run, ${options.stepSeconds} s per step`,
      `service pool ${options.service.poolMax}, LOG_LEVEL=${options.service.logLevel}`,
      report.startedAt.slice(0, 10),
      commit,
    ].join(' · '),
  ];
}

function footer(report: BenchReport): string[] {
  const { sellOut, mixed } = report.service;
  const count = (value: number): string => value.toLocaleString('en-US');
  const fairness = report.fairness.value === null ? 'n/a' : report.fairness.value.toFixed(2);
  const failures = report.checks.filter((check) => !check.passed).length;
  const lines = [
    `Sell-out: ${count(sellOut.requests)} requests at ${sellOut.connections} connections for ${count(sellOut.capacity)} slots: ` +
      `${count(sellOut.statusCounts['201'] ?? 0)} × 201, ${count(sellOut.statusCounts['409'] ?? 0)} × 409; ` +
      `last slot after ${sellOut.lastBookingSeconds.toFixed(2)} s, all answered in ${sellOut.durationSeconds.toFixed(2)} s.`,
    `Mixed, hot + spread at ${mixed.hot.connections} connections each: spread p99 ${mixed.spread.latency.p99Ms.toFixed(1)} ms; ` +
      `fairness ${fairness} (mixed spread p99 / spread-only p99; target ≤ ${report.fairness.target}).`,
  ];
  if (!report.pgbench.available) {
    lines.push(`n/a: pgbench skipped (${report.pgbench.skipped}).`);
  } else {
    const skipped = [...report.pgbench.hot, ...report.pgbench.spread].flatMap((step) => ('skipped' in step ? [step] : []));
    const clients = [...new Set(skipped.map((step) => step.clients))];
    if (skipped[0]) lines.push(`n/a: pgbench skipped at ${clients.join(', ')} clients (${skipped[0].skipped}).`);
  }
  lines.push(
    `Checks: ${report.checks.length - failures} passed, ${failures} failed. autocannon and pgbench share the machine with the service and PostgreSQL.`,
  );
  return lines;
}

/** A round axis maximum at or above `value`, with its tick step (1, 2 or 5 × 10^n; about 5 ticks). */
function niceScale(value: number): { max: number; step: number } {
  if (value <= 0) return { max: 1, step: 0.2 };
  const rough = value / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rough)!;
  return { max: Math.ceil(value / step) * step, step };
}

function text(
  x: number,
  y: number,
  content: string,
  style: { size?: number; weight?: 'bold'; anchor?: 'start' | 'middle' | 'end'; color?: string } = {},
): string {
  const attributes = [
    `x="${x.toFixed(1)}"`,
    `y="${y.toFixed(1)}"`,
    style.size ? `font-size="${style.size}"` : '',
    style.weight ? `font-weight="${style.weight}"` : '',
    style.anchor && style.anchor !== 'start' ? `text-anchor="${style.anchor}"` : '',
    style.color ? `fill="${style.color}"` : '',
  ].filter((attribute) => attribute !== '');
  return `<text ${attributes.join(' ')}>${escapeXml(content)}</text>`;
}

function escapeXml(value: string): string {
  return value.replace(/[<>&"']/g, (char) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[char]!);
}
