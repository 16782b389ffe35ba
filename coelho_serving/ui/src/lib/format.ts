// Formatters and small pure computations shared by the pages.

/** A number for a card: integers with thousands separators, others with 4 significant digits. */
export function formatNumber(value: unknown, digits = 4): string {
	if (value === null || value === undefined || value === '') return '—';
	const n = typeof value === 'number' ? value : Number(value);
	if (!Number.isFinite(n)) return String(value);
	if (Number.isInteger(n)) return n.toLocaleString('en-US');
	const abs = Math.abs(n);
	if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return n.toExponential(2);
	return Number(n.toPrecision(digits)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

/** "as of N s ago" wording for an age in seconds. */
export function formatAgo(seconds: number | null | undefined): string {
	if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return 'never';
	const s = Math.max(0, Math.round(seconds));
	if (s < 60) return `${s} s ago`;
	if (s < 3600) return `${Math.floor(s / 60)} min ago`;
	if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
	return `${Math.floor(s / 86400)} d ago`;
}

/** Seconds between an ISO time and `now` (ms), or null when the time does not parse. */
export function ageSeconds(iso: string | null | undefined, now: number): number | null {
	if (!iso) return null;
	const t = Date.parse(iso);
	return Number.isNaN(t) ? null : (now - t) / 1000;
}

/** Events per second between two (time ms, count) samples; null when it cannot be known. */
export function ratePerSecond(
	before: { at: number; count: number } | null | undefined,
	after: { at: number; count: number } | null | undefined
): number | null {
	if (!before || !after) return null;
	const seconds = (after.at - before.at) / 1000;
	if (seconds <= 0 || after.count < before.count) return null;
	return (after.count - before.count) / seconds;
}

/** Milliseconds to a readable duration ("850 ms", "3.2 s"). */
export function formatMs(ms: number | null | undefined): string {
	if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
	return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The scalar entries of a metrics object (numbers only), sorted by name. */
export function scalarMetrics(metrics: Record<string, unknown> | null | undefined): [string, number][] {
	return Object.entries(metrics ?? {})
		.filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]))
		.filter(([name]) => !['events_learned', 'updated_at'].includes(name))
		.sort(([a], [b]) => a.localeCompare(b));
}

/** Metrics grouped for cards: by the part before the first '_' or '.', else "other". */
export function groupMetrics(metrics: Record<string, number>): [string, [string, number][]][] {
	const groups = new Map<string, [string, number][]>();
	for (const [name, value] of Object.entries(metrics).sort(([a], [b]) => a.localeCompare(b))) {
		const match = name.match(/^([A-Za-z0-9]+)[_.]/);
		const group = match ? match[1] : 'other';
		if (!groups.has(group)) groups.set(group, []);
		groups.get(group)!.push([name, value]);
	}
	// Single-member groups are folded into "other" (a group of one is noise).
	const out: [string, [string, number][]][] = [];
	const other: [string, number][] = [];
	for (const [group, items] of groups) {
		if (items.length > 1 && group !== 'other') out.push([group, items]);
		else other.push(...items);
	}
	if (other.length) out.push(['other', other]);
	return out;
}

/** The events-learned position of a timestamp on a metric history (nearest earlier point). */
export function stepAt(
	points: { step: number; timestamp: number }[],
	timestamp: number
): number | null {
	let found: number | null = null;
	for (const point of points) {
		if (point.timestamp <= timestamp) found = point.step;
		else break;
	}
	return found;
}

/** A CSV document of a result table (RFC 4180 quoting). */
export function toCsv(columns: string[], rows: unknown[][]): string {
	const cell = (v: unknown) => {
		const text = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
		return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
	};
	return [columns, ...rows].map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}

/** Compare two table cells for sorting: numbers numerically, null last, else as text. */
export function compareCells(a: unknown, b: unknown): number {
	if (a === b) return 0;
	if (a === null || a === undefined) return 1;
	if (b === null || b === undefined) return -1;
	if (typeof a === 'number' && typeof b === 'number') return a - b;
	return String(a).localeCompare(String(b), 'en', { numeric: true });
}
