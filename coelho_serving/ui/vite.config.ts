import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
	plugins: [sveltekit()],
	build: { chunkSizeWarningLimit: 5000, reportCompressedSize: false },
	test: { include: ['src/**/*.test.ts'], environment: 'node' }
});
