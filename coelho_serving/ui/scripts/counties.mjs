// Houston-area county outlines from us-atlas (bundled, no tiles): src/lib/generated/counties.json
// holds one line trace ({lon, lat} with null between rings) and a label point per county.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { feature } from 'topojson-client';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'src', 'lib', 'generated', 'counties.json');
// Around the generators' Houston box (lat 29.5..30.1, lon -95.8..-95.0), with a margin.
const BOX = { west: -96.4, east: -94.4, south: 28.9, north: 30.7 };
const TEXAS = '48';

const topology = JSON.parse(readFileSync(require.resolve('us-atlas/counties-10m.json'), 'utf8'));
const counties = feature(topology, topology.objects.counties).features;
const inBox = ([lon, lat]) =>
	lon >= BOX.west && lon <= BOX.east && lat >= BOX.south && lat <= BOX.north;
const rings = (geometry) =>
	geometry.type === 'Polygon' ? geometry.coordinates : geometry.coordinates.flat();
const round = (v) => Math.round(v * 1e4) / 1e4;

const lon = [];
const lat = [];
const labels = [];
for (const county of counties) {
	if (!String(county.id).startsWith(TEXAS)) continue;
	const all = rings(county.geometry);
	if (!all.some((ring) => ring.some(inBox))) continue;
	for (const ring of all) {
		for (const [x, y] of ring) {
			lon.push(round(x));
			lat.push(round(y));
		}
		lon.push(null);
		lat.push(null);
	}
	const points = all.flat();
	const mean = (i) => points.reduce((sum, p) => sum + p[i], 0) / points.length;
	labels.push({ name: county.properties.name, lon: round(mean(0)), lat: round(mean(1)) });
}
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ box: BOX, lon, lat, labels }));
console.log(`counties: ${labels.length} outlines, ${lon.length} points -> ${out}`);
