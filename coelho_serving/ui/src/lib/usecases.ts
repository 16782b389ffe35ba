// The three products the UI knows at build time (routes are prerendered per use case). What
// each one serves is read from the API at run time (its OpenAPI document, status, ...).

export interface UseCase {
	key: string;
	title: string;
	short: string;
	task: 'classification' | 'regression' | 'clustering';
	/** The prediction field of the answer. */
	answer: string;
	sqlTemplates: { name: string; query: string }[];
}

const common = (time: string) => [
	{ name: 'Latest events', query: `SELECT * FROM data ORDER BY ${time} DESC LIMIT 50` },
	{ name: 'Row count', query: 'SELECT count(*) AS events FROM data' },
	{
		name: 'Events per hour',
		query: `SELECT date_trunc('hour', CAST(${time} AS TIMESTAMP)) AS hour, count(*) AS events\nFROM data GROUP BY 1 ORDER BY 1 DESC LIMIT 48`
	}
];

export const USE_CASES: UseCase[] = [
	{
		key: 'tfd',
		title: 'Transaction Fraud Detection',
		short: 'Fraud',
		task: 'classification',
		answer: 'fraud_probability',
		sqlTemplates: [
			...common('timestamp'),
			{
				name: 'Fraud rate by category',
				query:
					'SELECT product_category, count(*) AS n, avg(CAST(is_fraud AS DOUBLE)) AS fraud_rate\nFROM data GROUP BY 1 ORDER BY fraud_rate DESC'
			},
			{
				name: 'Largest amounts',
				query: 'SELECT transaction_id, amount, currency, merchant_id, is_fraud\nFROM data ORDER BY amount DESC LIMIT 20'
			}
		]
	},
	{
		key: 'eta',
		title: 'Estimated Time of Arrival',
		short: 'ETA',
		task: 'regression',
		answer: 'estimated_travel_time_seconds',
		sqlTemplates: [
			...common('timestamp'),
			{
				name: 'Travel time by weather',
				query:
					'SELECT weather, count(*) AS trips, avg(simulated_actual_travel_time_seconds) AS mean_seconds\nFROM data GROUP BY 1 ORDER BY mean_seconds DESC'
			}
		]
	},
	{
		key: 'ecci',
		title: 'E-Commerce Customer Interactions',
		short: 'Customers',
		task: 'clustering',
		answer: 'cluster',
		sqlTemplates: [
			...common('timestamp'),
			{
				name: 'Events by type',
				query: 'SELECT event_type, count(*) AS n FROM data GROUP BY 1 ORDER BY n DESC'
			}
		]
	}
];

export function useCase(key: string): UseCase {
	const found = USE_CASES.find((u) => u.key === key);
	if (!found) throw new Error(`unknown use case ${key}`);
	return found;
}
