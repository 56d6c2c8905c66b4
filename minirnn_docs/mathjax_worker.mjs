// Renders TeX to SVG for the minirnn docs build, one JSON request per line on stdin.
// Request:  {"items": [{"tex": "...", "display": true}, ...]}
// Response: {"items": [{"html": "<mjx-container ...>", "error": null | "message"}, ...]}
// Started once per build by minirnn_docs/mathjax.py and kept alive; nothing is fetched.
// With --css it prints the stylesheet the SVG output needs and exits (run by `npm ci`).
import readline from 'node:readline';
import MathJax from 'mathjax';

await MathJax.init({
  loader: {load: ['input/tex', 'output/svg', 'adaptors/liteDOM', 'a11y/assistive-mml']},
  tex: {packages: {'[+]': ['ams'], '[-]': ['noundefined']}},
  svg: {fontCache: 'none'},
});
const adaptor = MathJax.startup.adaptor;
if (process.argv.includes('--css')) {
  process.stdout.write(adaptor.textContent(MathJax.svgStylesheet()));
  process.exit(0);
}

function errorOf(node) {
  // TeX errors come back as an <merror> with the message in data-mjx-error.
  const html = adaptor.outerHTML(node);
  const m = html.match(/data-mjx-error="([^"]*)"/);
  return m ? m[1] : null;
}

async function render(item) {
  MathJax.texReset();
  const node = await MathJax.tex2svgPromise(item.tex, {display: item.display});
  return {html: adaptor.outerHTML(node), error: errorOf(node)};
}

const lines = readline.createInterface({input: process.stdin, terminal: false});
for await (const line of lines) {
  let reply;
  try {
    const request = JSON.parse(line);
    const items = [];
    for (const item of request.items) items.push(await render(item));
    reply = {items};
  } catch (err) {
    reply = {fatal: String(err && err.stack || err)};
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
