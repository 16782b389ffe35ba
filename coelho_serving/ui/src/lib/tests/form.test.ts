import { describe, expect, it } from 'vitest';
import { fieldsFromSchema, requestFromValues, requestSchema, valuesFromEvent } from '../form';

// A request schema shaped like the API's (a $ref to a component with a nested object).
const components = {
	TripRequest: {
		type: 'object',
		required: ['origin', 'weather', 'hour_of_day', 'rated', 'timestamp'],
		properties: {
			origin: { $ref: '#/components/schemas/Origin' },
			weather: { type: 'string', enum: ['Clear', 'Rain'], title: 'Weather' },
			hour_of_day: { type: 'integer', minimum: 0, maximum: 23, title: 'Hour Of Day' },
			distance: { type: 'number', minimum: 0 },
			rated: { type: 'boolean' },
			timestamp: { type: 'string', format: 'date-time' },
			note: { anyOf: [{ type: 'string' }, { type: 'null' }] }
		}
	},
	Origin: {
		type: 'object',
		required: ['lat', 'lon'],
		properties: { lat: { type: 'number', minimum: 29.5, maximum: 30.1 }, lon: { type: 'number' } }
	}
};
const schema = { $ref: '#/components/schemas/TripRequest' };

describe('fieldsFromSchema', () => {
	const fields = fieldsFromSchema(schema, components);

	it('flattens nested objects into dotted keys, in schema order', () => {
		expect(fields.map((f) => f.key)).toEqual([
			'origin.lat',
			'origin.lon',
			'weather',
			'hour_of_day',
			'distance',
			'rated',
			'timestamp',
			'note'
		]);
	});

	it('types each field from the schema', () => {
		const kinds = Object.fromEntries(fields.map((f) => [f.key, f.kind]));
		expect(kinds).toMatchObject({
			'origin.lat': 'number',
			weather: 'enum',
			hour_of_day: 'integer',
			rated: 'boolean',
			timestamp: 'datetime',
			note: 'text'
		});
		expect(fields.find((f) => f.key === 'weather')?.options).toEqual(['Clear', 'Rain']);
		expect(fields.find((f) => f.key === 'distance')?.required).toBe(false);
		expect(fields.find((f) => f.key === 'origin.lat')?.required).toBe(true);
	});
});

describe('form <-> request', () => {
	const fields = fieldsFromSchema(schema, components);
	const event = {
		origin: { lat: 29.9, lon: -95.4 },
		weather: 'Rain',
		hour_of_day: 7,
		distance: 3.5,
		rated: true,
		timestamp: '2026-12-05T07:00:00+00:00',
		simulated_actual_travel_time_seconds: 900 // a label: not in the schema
	};

	it('fills values from an event, leaving out fields the schema does not have', () => {
		const values = valuesFromEvent(fields, event);
		expect(values['origin.lat']).toBe('29.9');
		expect(values.rated).toBe(true);
		expect(values.note).toBe('');
		expect(Object.keys(values)).not.toContain('simulated_actual_travel_time_seconds');
	});

	it('round-trips an event to the same typed request', () => {
		const { body, errors } = requestFromValues(fields, valuesFromEvent(fields, event));
		expect(errors).toEqual({});
		const { simulated_actual_travel_time_seconds: _label, ...features } = event;
		expect(body).toEqual(features);
	});

	it('reports bad values per field', () => {
		const values = valuesFromEvent(fields, event);
		values['origin.lat'] = '31';
		values.hour_of_day = '7.5';
		values.weather = 'Snow';
		values.timestamp = 'yesterday-ish';
		values.distance = '';
		const { errors, body } = requestFromValues(fields, values);
		expect(Object.keys(errors).sort()).toEqual(['hour_of_day', 'origin.lat', 'timestamp', 'weather']);
		expect(errors['origin.lat']).toContain('30.1');
		expect(body).not.toHaveProperty('distance');
	});

	it('finds the request body schema of a POST path', () => {
		const doc = {
			paths: {
				'/p': { post: { requestBody: { content: { 'application/json': { schema } } } } }
			}
		};
		expect(requestSchema(doc, '/p')).toBe(schema);
		expect(requestSchema(doc, '/missing')).toBeNull();
	});
});
