import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LiveStore } from '../live.svelte';

// A fake EventSource (unit test of the store's logic): records instances, lets the test emit.
class FakeEventSource {
	static instances: FakeEventSource[] = [];
	listeners: Record<string, ((event: { data: string }) => void)[]> = {};
	onerror: (() => void) | null = null;
	closed = false;
	constructor(readonly url: string) {
		FakeEventSource.instances.push(this);
	}
	addEventListener(type: string, listener: (event: { data: string }) => void) {
		(this.listeners[type] ??= []).push(listener);
	}
	emit(type: string, data: unknown) {
		for (const listener of this.listeners[type] ?? []) listener({ data: JSON.stringify(data) });
	}
	close() {
		this.closed = true;
	}
}

beforeEach(() => {
	vi.useFakeTimers();
	FakeEventSource.instances = [];
});
afterEach(() => vi.useRealTimers());

describe('LiveStore polling', () => {
	it('polls at the interval, stops when paused and resumes', async () => {
		let n = 0;
		const poll = vi.fn(async () => ++n);
		const store = new LiveStore<number>({ poll, interval: 5, now: () => 42 });
		store.start();
		await vi.advanceTimersByTimeAsync(0);
		expect(store.value).toBe(1);
		expect(store.mode).toBe('polling');
		expect(store.updatedAt).toBe(42);
		await vi.advanceTimersByTimeAsync(5000);
		expect(store.value).toBe(2);
		await vi.advanceTimersByTimeAsync(10_000);
		expect(store.value).toBe(4);

		store.stop();
		expect(store.paused).toBe(true);
		await vi.advanceTimersByTimeAsync(60_000);
		expect(poll).toHaveBeenCalledTimes(4);

		store.toggle();
		await vi.advanceTimersByTimeAsync(0);
		expect(store.value).toBe(5);
		store.stop();
	});

	it('keeps the last value and reports the error when a poll fails', async () => {
		let fail = false;
		const store = new LiveStore<string>({
			poll: async () => {
				if (fail) throw new Error('API down');
				return 'ok';
			},
			interval: 1
		});
		store.start();
		await vi.advanceTimersByTimeAsync(0);
		fail = true;
		await vi.advanceTimersByTimeAsync(1000);
		expect(store.value).toBe('ok');
		expect(store.error).toBe('API down');
		fail = false;
		await vi.advanceTimersByTimeAsync(1000);
		expect(store.error).toBeNull();
		store.stop();
	});
});

describe('LiveStore with Server-Sent Events', () => {
	it('takes updates from the stream and does not poll while it works', async () => {
		const poll = vi.fn(async () => ({ n: 0 }));
		const store = new LiveStore<{ n: number }>({
			poll,
			interval: 5,
			stream: '/stream',
			EventSource: FakeEventSource as unknown as typeof EventSource
		});
		store.start();
		await vi.advanceTimersByTimeAsync(0);
		expect(store.mode).toBe('sse');
		expect(poll).toHaveBeenCalledTimes(1); // the first load only
		const source = FakeEventSource.instances[0];
		expect(source.url).toBe('/stream');
		source.emit('update', { n: 7 });
		expect(store.value).toEqual({ n: 7 });
		source.emit('update', { error: 'Redis is unavailable' });
		expect(store.error).toBe('Redis is unavailable');
		expect(store.value).toEqual({ n: 7 });
		await vi.advanceTimersByTimeAsync(30_000);
		expect(poll).toHaveBeenCalledTimes(1);
		store.stop();
		expect(source.closed).toBe(true);
	});

	it('falls back to polling when the stream fails', async () => {
		let n = 0;
		const store = new LiveStore<number>({
			poll: async () => ++n,
			interval: 2,
			stream: '/stream',
			EventSource: FakeEventSource as unknown as typeof EventSource
		});
		store.start();
		await vi.advanceTimersByTimeAsync(0);
		FakeEventSource.instances[0].onerror?.();
		expect(store.mode).toBe('polling');
		expect(FakeEventSource.instances[0].closed).toBe(true);
		await vi.advanceTimersByTimeAsync(2000);
		expect(store.value).toBe(2);
		await vi.advanceTimersByTimeAsync(2000);
		expect(store.value).toBe(3);
		// Resuming after a pause keeps polling: the stream failed on this page.
		store.stop();
		store.start();
		await vi.advanceTimersByTimeAsync(0);
		expect(store.mode).toBe('polling');
		expect(FakeEventSource.instances).toHaveLength(1);
		store.stop();
	});
});
