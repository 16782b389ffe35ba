import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** Static build served by the API at /ui: every route prerendered, no fallback page. */
const config = {
	preprocess: vitePreprocess(),
	kit: {
		adapter: adapter({ pages: 'build', assets: 'build', strict: true }),
		paths: { base: '/ui', relative: false },
		prerender: {
			// Links outside the UI (the API's /docs, Dagster, MLflow) are not pages to render.
			handleHttpError: ({ path, message }) => {
				if (path.startsWith('/ui')) throw new Error(message);
			},
			handleMissingId: 'fail'
		},
		version: { pollInterval: 0 }
	}
};

export default config;
