// Run by `npm ci`: puts the two generated assets the docs site needs into docs/assets/.
// - mathjax-svg.css: the stylesheet MathJax's SVG output needs (printed by the worker);
// - iframe-worker-shim.js: lets the site search work from file:// without a CDN.
import {execFileSync} from 'node:child_process';
import {copyFileSync, mkdirSync, writeFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const assets = join(here, '..', 'docs', 'assets');
mkdirSync(assets, {recursive: true});
const css = execFileSync(process.execPath, [join(here, 'mathjax_worker.mjs'), '--css']);
writeFileSync(join(assets, 'mathjax-svg.css'), css);
const require = createRequire(import.meta.url);
copyFileSync(require.resolve('iframe-worker/shim'), join(assets, 'iframe-worker-shim.js'));
