/** Renders the benchmark result as a self-contained SVG (no dependencies, readable on GitHub). */
import type { BenchResult } from './run';

const COLORS: Record<string, string> = { raw: '#888888', 'per-subscriber': '#d9534f', grouped: '#2b7bb9' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

interface Bar {
  group: string;
  series: string;
  value: number;
  label: string;
}

function panel(
  x0: number,
  y0: number,
  w: number,
  h: number,
  title: string,
  unit: string,
  bars: Bar[],
  series: string[],
): string {
  const groups = [...new Set(bars.map((b) => b.group))];
  const max = Math.max(1, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
  const plotTop = y0 + 42;
  const plotH = h - 82;
  const gw = w / Math.max(1, groups.length);
  const bw = Math.min(60, (gw - 30) / Math.max(1, series.length));
  let out = `<text x="${x0 + w / 2}" y="${y0 + 16}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`;
  out += `<line x1="${x0}" y1="${plotTop + plotH}" x2="${x0 + w}" y2="${plotTop + plotH}" stroke="#333"/>`;
  groups.forEach((g, gi) => {
    const gx = x0 + gi * gw + (gw - bw * series.length) / 2;
    series.forEach((s, si) => {
      const bar = bars.find((b) => b.group === g && b.series === s);
      if (!bar || !Number.isFinite(bar.value)) return;
      const bh = (bar.value / max) * plotH;
      const x = gx + si * bw;
      out += `<rect x="${x + 2}" y="${plotTop + plotH - bh}" width="${bw - 4}" height="${bh}" fill="${COLORS[s] ?? '#555'}"/>`;
      out += `<text x="${x + bw / 2}" y="${plotTop + plotH - bh - 4}" text-anchor="middle" font-size="10">${esc(bar.label)}</text>`;
    });
    out += `<text x="${x0 + gi * gw + gw / 2}" y="${plotTop + plotH + 16}" text-anchor="middle">${esc(g)}</text>`;
  });
  out += `<text x="${x0}" y="${plotTop + plotH + 34}" font-size="10" fill="#555">${esc(unit)}</text>`;
  return out;
}

export function renderChart(result: BenchResult): string {
  const series = [...new Set(result.scenarios.map((s) => s.mode))];
  const W = 1260;
  const H = 360;
  const fmt = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(n < 10 ? 1 : 0));
  const throughput: Bar[] = result.scenarios.map((s) => ({
    group: `${s.subscribers} subscribers`,
    series: s.mode,
    value: s.saturation?.deliveriesPerSec ?? NaN,
    label: s.saturation ? fmt(s.saturation.deliveriesPerSec) : '',
  }));
  const rate = result.options.rates[0];
  const latency: Bar[] = result.scenarios.map((s) => {
    const r = s.rates.find((x) => x.rate === rate);
    return {
      group: `${s.subscribers} subscribers`,
      series: s.mode,
      value: r?.p99Ms ?? NaN,
      label: r ? `${fmt(r.p99Ms)} ms` : '',
    };
  });
  const memory: Bar[] = result.scenarios.map((s) => ({
    group: `${s.subscribers} subscribers`,
    series: s.mode,
    value: s.rssPerConnectionKiB,
    label: Number.isFinite(s.rssPerConnectionKiB) ? `${s.rssPerConnectionKiB.toFixed(1)}` : '',
  }));
  const legend = series
    .map(
      (s, i) =>
        `<rect x="${20 + i * 150}" y="${H - 22}" width="12" height="12" fill="${COLORS[s] ?? '#555'}"/><text x="${36 + i * 150}" y="${H - 12}">${esc(s)}</text>`,
    )
    .join('');
  const machine = `${result.machine.cpus} CPUs (${result.machine.cpuModel}), ${result.machine.memGiB} GiB, Node ${result.machine.node}, ${result.startedAt.slice(0, 10)}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
${panel(20, 10, W / 3 - 40, H - 50, 'Deliveries/s at saturation (higher is better)', 'deliveries per second, server and load generator on one machine', throughput, series)}
${panel(W / 3 + 20, 10, W / 3 - 40, H - 50, `Delivery latency p99 at ${rate} msg/s (lower is better)`, 'sendMessage call to each subscriber, milliseconds', latency, series)}
${panel((2 * W) / 3 + 20, 10, W / 3 - 40, H - 50, 'Idle RSS per subscribed connection (lower is better)', 'KiB, growth over the second half of the connections', memory, series)}
${legend}
<text x="${W - 10}" y="${H - 12}" text-anchor="end" font-size="10" fill="#555">${esc(machine)}</text>
</svg>
`;
}
