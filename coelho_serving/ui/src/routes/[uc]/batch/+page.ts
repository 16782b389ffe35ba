export { entries, load } from '$lib/entries';
