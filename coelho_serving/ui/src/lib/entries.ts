import { USE_CASES } from './usecases';

/** The use-case pages to prerender, and the page data (the use case key). */
export const entries = () => USE_CASES.map((u) => ({ uc: u.key }));

export function load({ params }: { params: { uc: string } }) {
	return { uc: params.uc };
}
