// Result table logic: filter, sort and page rows (pure, for the SQL page).
import { compareCells } from './format';

export interface TableView {
	rows: unknown[][];
	total: number;
	pages: number;
}

export function viewRows(
	rows: unknown[][],
	options: { filter?: string; sortColumn?: number | null; descending?: boolean; page?: number; pageSize?: number }
): TableView {
	const needle = (options.filter ?? '').trim().toLowerCase();
	let out = needle
		? rows.filter((row) => row.some((cell) => String(cell ?? '').toLowerCase().includes(needle)))
		: [...rows];
	if (options.sortColumn !== null && options.sortColumn !== undefined) {
		const column = options.sortColumn;
		const sign = options.descending ? -1 : 1;
		out.sort((a, b) => sign * compareCells(a[column], b[column]));
	}
	const pageSize = Math.max(1, options.pageSize ?? 25);
	const pages = Math.max(1, Math.ceil(out.length / pageSize));
	const page = Math.min(Math.max(0, options.page ?? 0), pages - 1);
	return { rows: out.slice(page * pageSize, (page + 1) * pageSize), total: out.length, pages };
}
