// Live data for a page: Server-Sent Events when a stream URL is given and the browser has
// EventSource, polling otherwise (and after the stream fails). Pause stops both.

export interface LiveOptions<T> {
	/** Fetch the current value (polling, and the first load). */
	poll: () => Promise<T>;
	/** Seconds between polls. */
	interval: number;
	/** An SSE URL whose `update` events carry the value as JSON (optional). */
	stream?: string;
	/** Injected for tests; defaults to the browser's. */
	EventSource?: typeof EventSource;
	/** Turn an SSE payload into the value (default: the payload). */
	fromEvent?: (payload: unknown) => T;
	now?: () => number;
}

export type LiveMode = 'sse' | 'polling' | 'paused';

export class LiveStore<T> {
	value = $state<T | null>(null);
	error = $state<string | null>(null);
	updatedAt = $state<number | null>(null);
	mode = $state<LiveMode>('paused');

	#options: LiveOptions<T>;
	#timer: ReturnType<typeof setTimeout> | null = null;
	#source: EventSource | null = null;
	#streamFailed = false;
	#running = false;
	#generation = 0;

	constructor(options: LiveOptions<T>) {
		this.#options = options;
	}

	get paused(): boolean {
		return !this.#running;
	}

	start(): void {
		if (this.#running) return;
		this.#running = true;
		this.#generation++;
		const ES = this.#options.EventSource ?? (globalThis as { EventSource?: typeof EventSource }).EventSource;
		if (this.#options.stream && ES && !this.#streamFailed) {
			this.mode = 'sse';
			void this.refresh();
			this.#openStream(ES);
		} else {
			this.mode = 'polling';
			void this.#pollLoop(this.#generation);
		}
	}

	stop(): void {
		this.#running = false;
		this.#generation++;
		this.mode = 'paused';
		if (this.#timer !== null) clearTimeout(this.#timer);
		this.#timer = null;
		this.#source?.close();
		this.#source = null;
	}

	toggle(): void {
		if (this.#running) this.stop();
		else this.start();
	}

	/** Fetch now (also while paused: a manual refresh). */
	async refresh(): Promise<void> {
		try {
			this.#set(await this.#options.poll());
		} catch (error) {
			this.error = error instanceof Error ? error.message : String(error);
		}
	}

	#set(value: T): void {
		this.value = value;
		this.error = null;
		this.updatedAt = (this.#options.now ?? Date.now)();
	}

	async #pollLoop(generation: number): Promise<void> {
		if (generation !== this.#generation) return;
		await this.refresh();
		if (generation !== this.#generation) return;
		this.#timer = setTimeout(() => void this.#pollLoop(generation), this.#options.interval * 1000);
	}

	#openStream(ES: typeof EventSource): void {
		const source = new ES(this.#options.stream as string);
		this.#source = source;
		source.addEventListener('update', (event) => {
			try {
				const payload = JSON.parse((event as MessageEvent).data);
				if (payload && typeof payload === 'object' && 'error' in payload && Object.keys(payload).length === 1) {
					this.error = String(payload.error);
					return;
				}
				this.#set(this.#options.fromEvent ? this.#options.fromEvent(payload) : (payload as T));
			} catch (error) {
				this.error = `bad update: ${error}`;
			}
		});
		source.onerror = () => {
			// The stream failed (or the server is gone): fall back to polling for this page.
			source.close();
			if (this.#source !== source || !this.#running) return;
			this.#source = null;
			this.#streamFailed = true;
			this.mode = 'polling';
			const generation = ++this.#generation;
			this.#timer = setTimeout(() => void this.#pollLoop(generation), this.#options.interval * 1000);
		};
	}
}
