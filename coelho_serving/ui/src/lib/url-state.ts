// Page state kept in the URL query (tab, run, metric): read in the browser only (prerendered
// pages have no query at build time), written with replaceState (no new history entry).
import { replaceState } from '$app/navigation';

export function readParam(name: string, fallback = ''): string {
	if (typeof window === 'undefined') return fallback;
	return new URL(window.location.href).searchParams.get(name) ?? fallback;
}

export function writeParams(params: Record<string, string | null>): void {
	const next = new URL(window.location.href);
	for (const [name, value] of Object.entries(params)) {
		if (value === null || value === '') next.searchParams.delete(name);
		else next.searchParams.set(name, value);
	}
	replaceState(next, {});
}
