// Metric history markers (drift, restart, promotion) as Plotly shapes and a hover trace.
import { stepAt } from './format';

export interface Marker {
	kind: 'drift' | 'restart' | 'promotion';
	step: number | null;
	timestamp: number | null;
	label: string;
}
export interface Point {
	step: number;
	value: number;
	timestamp: number;
}

export const MARKER_COLORS: Record<Marker['kind'], string> = {
	drift: '#dc2626',
	restart: '#7c3aed',
	promotion: '#d97706'
};

/** Where a marker sits on the events axis: its step, else its time mapped onto the history. */
export function markerStep(marker: Marker, points: Point[]): number | null {
	if (marker.step !== null && marker.step !== undefined) return marker.step;
	if (marker.timestamp === null || marker.timestamp === undefined) return null;
	return stepAt(points, marker.timestamp);
}

/** Vertical dashed lines for the markers that can be placed, plus one hover trace. */
export function markerLayers(markers: Marker[], points: Point[]) {
	const placed = markers
		.map((m) => ({ ...m, x: markerStep(m, points) }))
		.filter((m): m is Marker & { x: number } => m.x !== null);
	const shapes = placed.map((m) => ({
		type: 'line',
		xref: 'x',
		yref: 'paper',
		x0: m.x,
		x1: m.x,
		y0: 0,
		y1: 1,
		line: { color: MARKER_COLORS[m.kind], width: 1.5, dash: 'dash' }
	}));
	const traces = (['drift', 'restart', 'promotion'] as const)
		.map((kind) => {
			const own = placed.filter((m) => m.kind === kind);
			return {
				type: 'scatter',
				mode: 'markers',
				name: kind,
				x: own.map((m) => m.x),
				y: own.map(() => 1),
				yaxis: 'y2',
				text: own.map((m) => m.label),
				hovertemplate: '%{text}<extra></extra>',
				marker: { color: MARKER_COLORS[kind], size: 10, symbol: kind === 'drift' ? 'triangle-down' : 'diamond' }
			};
		})
		.filter((t) => t.x.length);
	return { shapes, traces, placed: placed.length };
}
