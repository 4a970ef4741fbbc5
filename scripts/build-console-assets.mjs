// Copies the console's static assets (src/console/assets) next to the compiled console in dist/,
// where the console serves them from: no CDN, nothing fetched at run time.
import { cp } from 'node:fs/promises';

await cp('src/console/assets', 'dist/console/assets', { recursive: true });
