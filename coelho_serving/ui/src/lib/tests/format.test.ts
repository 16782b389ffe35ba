import { describe, expect, it, vi } from 'vitest';
import {
	ageSeconds,
	compareCells,
	formatAgo,
	formatMs,
	formatNumber,
	groupMetrics,
	ratePerSecond,
	scalarMetrics,
	stepAt,
	toCsv
} from '../format';
import { markerLayers, markerStep } from '../markers';
import { viewRows } from '../table';
import { fill, detailMessage, optionalPath } from '../api';

describe('formatters', () => {
	it('formats numbers for cards', () => {
		expect(formatNumber(1234567)).toBe('1,234,567');
		expect(formatNumber(0.123456)).toBe('0.1235');
		expect(formatNumber(0.00001234)).toBe('1.23e-5');
		expect(formatNumber(null)).toBe('—');
		expect(formatNumber('n/a')).toBe('n/a');
	});

	it('says how long ago', () => {
		expect(formatAgo(4.4)).toBe('4 s ago');
		expect(formatAgo(125)).toBe('2 min ago');
		expect(formatAgo(3 * 3600 + 5 * 60)).toBe('3 h 5 min ago');
		expect(formatAgo(null)).toBe('never');
		expect(ageSeconds('2026-01-01T00:00:10Z', Date.parse('2026-01-01T00:00:40Z'))).toBe(30);
		expect(ageSeconds('not a time', 0)).toBeNull();
		expect(formatMs(850.2)).toBe('850 ms');
		expect(formatMs(3210)).toBe('3.2 s');
	});

	it('computes rates only when they can be known', () => {
		expect(ratePerSecond({ at: 0, count: 100 }, { at: 2000, count: 300 })).toBe(100);
		expect(ratePerSecond(null, { at: 2000, count: 300 })).toBeNull();
		expect(ratePerSecond({ at: 0, count: 500 }, { at: 2000, count: 300 })).toBeNull(); // reset
		expect(ratePerSecond({ at: 0, count: 1 }, { at: 0, count: 2 })).toBeNull();
	});

	it('keeps scalar metrics and groups them', () => {
		const scalars = scalarMetrics({ MAE: 1.5, ConfusionMatrix: { a: 1 }, events_learned: 9, R2: 0.3, Bad: null });
		expect(scalars).toEqual([
			['MAE', 1.5],
			['R2', 0.3]
		]);
		const groups = groupMetrics({ test_mae: 1, test_rmse: 2, train_mae: 3, silhouette: 0.5 });
		expect(groups).toEqual([
			['test', [['test_mae', 1], ['test_rmse', 2]]],
			['other', [['silhouette', 0.5], ['train_mae', 3]]]
		]);
	});

	it('writes CSV with quoting', () => {
		expect(toCsv(['a', 'b'], [[1, 'x,y'], [null, 'say "hi"']])).toBe('a,b\r\n1,"x,y"\r\n,"say ""hi"""\r\n');
	});

	it('sorts cells: numbers numerically, nulls last', () => {
		const cells = [10, null, 2, 33];
		expect([...cells].sort(compareCells)).toEqual([2, 10, 33, null]);
		expect(['b10', 'b9'].sort(compareCells)).toEqual(['b9', 'b10']);
	});
});

describe('table view', () => {
	const rows = Array.from({ length: 60 }, (_, i) => [i, i % 2 ? 'odd' : 'even']);
	it('filters, sorts and pages', () => {
		const view = viewRows(rows, { filter: 'odd', sortColumn: 0, descending: true, page: 1, pageSize: 10 });
		expect(view.total).toBe(30);
		expect(view.pages).toBe(3);
		expect(view.rows[0]).toEqual([39, 'odd']);
		expect(viewRows(rows, { page: 99, pageSize: 25 }).rows[0]).toEqual([50, 'even']);
	});
});

describe('markers', () => {
	const points = [
		{ step: 100, value: 0.5, timestamp: 1000 },
		{ step: 200, value: 0.6, timestamp: 2000 },
		{ step: 300, value: 0.7, timestamp: 3000 }
	];
	it('places a marker by step, else by time on the history', () => {
		expect(stepAt(points, 2500)).toBe(200);
		expect(stepAt(points, 500)).toBeNull();
		expect(markerStep({ kind: 'drift', step: 250, timestamp: null, label: '' }, points)).toBe(250);
		expect(markerStep({ kind: 'promotion', step: null, timestamp: 3100, label: '' }, points)).toBe(300);
	});
	it('draws one line per placed marker and one hover trace per kind', () => {
		const layers = markerLayers(
			[
				{ kind: 'drift', step: 150, timestamp: null, label: 'd' },
				{ kind: 'promotion', step: null, timestamp: 10, label: 'too early' },
				{ kind: 'restart', step: 200, timestamp: 2000, label: 'r' }
			],
			points
		);
		expect(layers.placed).toBe(2);
		expect(layers.shapes.map((s) => s.x0)).toEqual([150, 200]);
		expect(layers.traces.map((t) => t.name)).toEqual(['drift', 'restart']);
	});
});

describe('api helpers', () => {
	it('fills path templates, encoding parameters', () => {
		expect(fill('/a/{uc}/runs/{run_id}', { uc: 'tfd', run_id: 'x/y' })).toBe('/a/tfd/runs/x%2Fy');
		expect(() => fill('/a/{uc}', {})).toThrow(/uc/);
	});
	it('reads FastAPI error details', () => {
		expect(detailMessage({ detail: 'only SELECT' }, 400)).toBe('only SELECT');
		expect(detailMessage({ detail: [{ loc: ['body', 'amount'], msg: 'too big' }] }, 422)).toBe('amount: too big');
		expect(detailMessage(null, 502)).toBe('HTTP 502');
	});
	it('finds optional routes only when the document has them', () => {
		const doc = { paths: { '/api/v1/batch/{uc}/comparison': {} } };
		expect(optionalPath(doc, 'comparison', 'eta')).toBe('/api/v1/batch/eta/comparison');
		expect(optionalPath(doc, 'leaderboard', 'eta')).toBeNull();
	});
});

describe('API key headers', () => {
	it('sends X-API-Key only when a key is kept in the browser', async () => {
		const { authHeaders, setApiKey } = await import('../api');
		const store = new Map<string, string>();
		const fake = {
			getItem: (k: string) => store.get(k) ?? null,
			setItem: (k: string, v: string) => void store.set(k, v),
			removeItem: (k: string) => void store.delete(k)
		};
		vi.stubGlobal('localStorage', fake);
		try {
			expect(authHeaders()).toEqual({ Accept: 'application/json' });
			setApiKey('s3cret');
			expect(authHeaders({ 'Content-Type': 'application/json' })).toEqual({
				Accept: 'application/json',
				'X-API-Key': 's3cret',
				'Content-Type': 'application/json'
			});
			setApiKey(null);
			expect(authHeaders()).not.toHaveProperty('X-API-Key');
		} finally {
			vi.unstubAllGlobals();
		}
	});
});
