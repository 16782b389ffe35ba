// The one API client of the UI: every path it calls is listed in PATHS (the contract test checks
// each against the API's /openapi.json). OPTIONAL paths are called only when /openapi.json has
// them (features other teams are adding).

export const PATHS = {
	openapi: '/openapi.json',
	root: '/',
	overview: '/api/v1/overview',
	status: '/api/v1/incremental/{uc}/status',
	metrics: '/api/v1/incremental/{uc}/metrics',
	sample: '/api/v1/incremental/{uc}/sample',
	report: '/api/v1/incremental/{uc}/report',
	clusters: '/api/v1/incremental/{uc}/clusters',
	clusterFeature: '/api/v1/incremental/{uc}/clusters/{feature}',
	history: '/api/v1/incremental/{uc}/history',
	stream: '/api/v1/incremental/{uc}/stream',
	predictLive: '/api/v1/incremental/{uc}/predict',
	predictBatch: '/api/v1/batch/{uc}/predict',
	runs: '/api/v1/batch/{uc}/runs',
	runMetrics: '/api/v1/batch/{uc}/runs/{run_id}/metrics',
	runPlots: '/api/v1/batch/{uc}/runs/{run_id}/visualizations',
	runPlot: '/api/v1/batch/{uc}/runs/{run_id}/visualizations/{tab}/{name}',
	retrain: '/api/v1/batch/{uc}/retrain',
	retrainStatus: '/api/v1/batch/{uc}/retrain/{run_id}',
	sqlQuery: '/api/v1/sql/{uc}/query',
	sqlSchema: '/api/v1/sql/{uc}/schema'
} as const;

/** Routes other work adds: looked up in /openapi.json, candidates in order of preference. */
export const OPTIONAL_PATHS = {
	leaderboard: ['/api/v1/incremental/{uc}/leaderboard'],
	comparison: [
		'/api/v1/{uc}/comparison',
		'/api/v1/batch/{uc}/comparison',
		'/api/v1/{uc}/online_vs_batch',
		'/api/v1/batch/{uc}/online_vs_batch'
	]
} as const;

export type PathName = keyof typeof PATHS;
export type OptionalName = keyof typeof OPTIONAL_PATHS;

/** A path template with its parameters filled in (each URL-encoded). */
export function fill(template: string, params: Record<string, string> = {}): string {
	return template.replace(/\{(\w+)\}/g, (_, name: string) => {
		const value = params[name];
		if (value === undefined) throw new Error(`missing path parameter ${name} for ${template}`);
		return encodeURIComponent(value);
	});
}

export function url(name: PathName, params: Record<string, string> = {}): string {
	return fill(PATHS[name], params);
}

/** An error the API answered, with its `detail` message. */
export class ApiError extends Error {
	constructor(
		readonly status: number,
		message: string
	) {
		super(message);
	}
}

/** The message of an API error body (FastAPI's `detail`: a string or a list of errors). */
export function detailMessage(body: unknown, status: number): string {
	const detail = (body as { detail?: unknown } | null)?.detail;
	if (typeof detail === 'string') return detail;
	if (Array.isArray(detail)) {
		return detail
			.map((d: { loc?: unknown[]; msg?: string }) =>
				[d.loc?.filter((p) => p !== 'body').join('.'), d.msg].filter(Boolean).join(': ')
			)
			.join('; ');
	}
	return `HTTP ${status}`;
}

// -- API key (when the API runs with COELHO_API_KEY): kept in this browser, sent as X-API-Key ----

const KEY_STORAGE = 'coelho.apiKey';

export function apiKey(): string | null {
	try {
		return globalThis.localStorage?.getItem(KEY_STORAGE) || null;
	} catch {
		return null;
	}
}

export function setApiKey(key: string | null): void {
	if (key) localStorage.setItem(KEY_STORAGE, key);
	else localStorage.removeItem(KEY_STORAGE);
}

/** Headers for an API call: JSON, plus the API key when one is set. */
export function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
	const key = apiKey();
	return { Accept: 'application/json', ...(key ? { 'X-API-Key': key } : {}), ...extra };
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
	const response = await fetch(path, {
		...init,
		headers: authHeaders((init?.headers as Record<string, string>) ?? {})
	});
	const text = await response.text();
	let body: unknown = null;
	try {
		body = text ? JSON.parse(text) : null;
	} catch {
		body = { detail: text };
	}
	if (!response.ok) throw new ApiError(response.status, detailMessage(body, response.status));
	return body as T;
}

export function get<T>(name: PathName, params: Record<string, string> = {}, query = ''): Promise<T> {
	return request<T>(url(name, params) + query);
}

export function post<T>(
	name: PathName,
	params: Record<string, string>,
	body: unknown,
	query = ''
): Promise<T> {
	return request<T>(url(name, params) + query, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify(body ?? {})
	});
}

// -- /openapi.json ------------------------------------------------------------------------------

export interface OpenApi {
	paths: Record<string, Record<string, unknown>>;
	components?: { schemas?: Record<string, unknown> };
}

let openapi: Promise<OpenApi> | null = null;

/** The API's OpenAPI document, fetched once per page load. */
export function loadOpenApi(): Promise<OpenApi> {
	openapi ??= request<OpenApi>(PATHS.openapi).catch((error) => {
		openapi = null;
		throw error;
	});
	return openapi;
}

/** The filled path of an optional route if the API has it, else null. */
export function optionalPath(doc: OpenApi, name: OptionalName, uc: string): string | null {
	const found = OPTIONAL_PATHS[name].find((template) => template in doc.paths);
	return found ? fill(found, { uc }) : null;
}

export function getPath<T>(path: string): Promise<T> {
	return request<T>(path);
}

/** An object URL of a binary resource fetched with the API key (images behind the key). */
export async function blobUrl(path: string): Promise<string> {
	const response = await fetch(path, { headers: authHeaders({ Accept: '*/*' }) });
	if (!response.ok) throw new ApiError(response.status, `HTTP ${response.status}`);
	return URL.createObjectURL(await response.blob());
}
