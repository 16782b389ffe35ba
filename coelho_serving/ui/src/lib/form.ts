// Prediction forms typed from the OpenAPI schema: fields from the request body's JSON schema,
// values from an event, and back to a request body (with per-field errors).

export type FieldKind = 'number' | 'integer' | 'boolean' | 'enum' | 'datetime' | 'text';

export interface FormField {
	key: string; // dotted path, e.g. "origin.lat"
	path: string[];
	label: string;
	kind: FieldKind;
	options?: string[];
	minimum?: number;
	maximum?: number;
	description?: string;
	required: boolean;
}

export type FormValues = Record<string, string | boolean>;

interface JsonSchema {
	$ref?: string;
	type?: string;
	format?: string;
	enum?: unknown[];
	title?: string;
	description?: string;
	minimum?: number;
	maximum?: number;
	properties?: Record<string, JsonSchema>;
	required?: string[];
	anyOf?: JsonSchema[];
	allOf?: JsonSchema[];
}

type Components = Record<string, unknown>;

function resolve(schema: JsonSchema, components: Components): JsonSchema {
	let current = schema;
	for (let i = 0; i < 20; i++) {
		if (current.$ref) {
			const name = current.$ref.split('/').pop() as string;
			current = (components[name] ?? {}) as JsonSchema;
		} else if (current.allOf?.length === 1) {
			current = current.allOf[0];
		} else if (current.anyOf) {
			current = current.anyOf.find((s) => s.type !== 'null') ?? current;
			if (!current.anyOf) continue;
			break;
		} else break;
	}
	return current;
}

function labelOf(name: string, schema: JsonSchema): string {
	return schema.title ?? name.replace(/_/g, ' ');
}

function kindOf(schema: JsonSchema): FieldKind {
	if (schema.enum) return 'enum';
	if (schema.type === 'boolean') return 'boolean';
	if (schema.type === 'integer') return 'integer';
	if (schema.type === 'number') return 'number';
	if (schema.type === 'string' && schema.format === 'date-time') return 'datetime';
	return 'text';
}

/** The form fields of a request body schema (nested objects flattened to dotted keys). */
export function fieldsFromSchema(
	schema: JsonSchema,
	components: Components,
	prefix: string[] = [],
	parentLabel = ''
): FormField[] {
	const resolved = resolve(schema, components);
	const required = new Set(resolved.required ?? []);
	const fields: FormField[] = [];
	for (const [name, raw] of Object.entries(resolved.properties ?? {})) {
		const property = resolve(raw, components);
		const path = [...prefix, name];
		const own = labelOf(name, raw.title ? raw : property);
		const label = parentLabel ? `${parentLabel} · ${own}` : own;
		if (property.type === 'object' || property.properties) {
			fields.push(...fieldsFromSchema(property, components, path, name.replace(/_/g, ' ')));
			continue;
		}
		fields.push({
			key: path.join('.'),
			path,
			label,
			kind: kindOf(property),
			options: property.enum?.map(String),
			minimum: property.minimum,
			maximum: property.maximum,
			description: property.description,
			required: required.has(name)
		});
	}
	return fields;
}

function at(event: unknown, path: string[]): unknown {
	let value = event;
	for (const part of path) {
		if (value === null || typeof value !== 'object') return undefined;
		value = (value as Record<string, unknown>)[part];
	}
	return value;
}

/** Form values of an event (fields the form does not have, e.g. labels, are left out). */
export function valuesFromEvent(fields: FormField[], event: unknown): FormValues {
	const values: FormValues = {};
	for (const field of fields) {
		const value = at(event, field.path);
		if (field.kind === 'boolean') values[field.key] = value === true;
		else values[field.key] = value === undefined || value === null ? '' : String(value);
	}
	return values;
}

export interface RequestResult {
	body: Record<string, unknown>;
	errors: Record<string, string>;
}

function parse(field: FormField, raw: string | boolean): { value?: unknown; error?: string } {
	if (field.kind === 'boolean') return { value: raw === true };
	const text = String(raw).trim();
	if (text === '') return field.required ? { error: 'required' } : {};
	if (field.kind === 'number' || field.kind === 'integer') {
		const value = Number(text);
		if (!Number.isFinite(value)) return { error: 'not a number' };
		if (field.kind === 'integer' && !Number.isInteger(value)) return { error: 'not an integer' };
		if (field.minimum !== undefined && value < field.minimum) return { error: `< ${field.minimum}` };
		if (field.maximum !== undefined && value > field.maximum) return { error: `> ${field.maximum}` };
		return { value };
	}
	if (field.kind === 'enum' && field.options && !field.options.includes(text)) {
		return { error: `one of ${field.options.join(', ')}` };
	}
	if (field.kind === 'datetime' && Number.isNaN(Date.parse(text))) return { error: 'not a date-time' };
	return { value: text };
}

/** The request body of form values, typed by the schema; errors by field key. */
export function requestFromValues(fields: FormField[], values: FormValues): RequestResult {
	const body: Record<string, unknown> = {};
	const errors: Record<string, string> = {};
	for (const field of fields) {
		const { value, error } = parse(field, values[field.key] ?? '');
		if (error) {
			errors[field.key] = error;
			continue;
		}
		if (value === undefined) continue;
		let target = body;
		for (const part of field.path.slice(0, -1)) {
			target = (target[part] ??= {}) as Record<string, unknown>;
		}
		target[field.path[field.path.length - 1]] = value;
	}
	return { body, errors };
}

/** The request body schema of a POST path in an OpenAPI document. */
export function requestSchema(
	doc: { paths: Record<string, Record<string, unknown>> },
	path: string
): JsonSchema | null {
	const post = doc.paths[path]?.post as
		| { requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }
		| undefined;
	return post?.requestBody?.content?.['application/json']?.schema ?? null;
}
