// The demo origin: serves demo/origin (a short HLS and DASH stream) and a player page.
// The gate sits in front of it; the player page itself is served here, unprotected.
//   node scripts/demo-origin.mjs [port]
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const port = Number(process.argv[2] || 8788);
const types = {
  '.m3u8': 'application/vnd.apple.mpegurl', '.mpd': 'application/dash+xml', '.ts': 'video/mp2t', '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4', '.jpg': 'image/jpeg', '.js': 'text/javascript', '.html': 'text/html; charset=utf-8',
};

const PLAYER = `<!doctype html><meta charset="utf-8"><title>streamgate demo player</title>
<style>body{font:15px system-ui;margin:2rem;max-width:52rem}video{width:100%;background:#000}code{word-break:break-all}</style>
<h1>streamgate demo player</h1>
<p>Plays <code id="src"></code> with hls.js; the gate rewrites every playlist so each request carries a session credential.</p>
<video id="v" controls muted autoplay playsinline></video>
<p id="status"></p>
<script src="/hls.js"></script>
<script>
  const src = new URLSearchParams(location.search).get('src');
  document.getElementById('src').textContent = src || '(give ?src=<signed URL>)';
  const status = document.getElementById('status');
  const hls = new Hls();
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) status.textContent = 'playback failed: ' + d.details + (d.response ? ' (HTTP ' + d.response.code + ')' : ''); });
  hls.on(Hls.Events.FRAG_BUFFERED, () => { status.textContent = 'playing through the gate'; });
  // The poster is on a public path of the gate (PUBLIC_PATHS): no credential needed.
  if (src) document.getElementById('v').poster = new URL('/posters/demo.jpg', src).href;
  if (src) { hls.loadSource(src); hls.attachMedia(document.getElementById('v')); }
</script>`;

createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
  try {
    if (path === '/player.html') return send(res, 200, types['.html'], PLAYER);
    if (path === '/hls.js') return send(res, 200, types['.js'], await readFile(join(root, 'npm', 'node_modules', 'hls.js', 'dist', 'hls.min.js')));
    if (path.includes('..')) return send(res, 400, 'text/plain', 'bad path');
    const body = await readFile(join(root, 'demo', 'origin', path));
    send(res, 200, types[extname(path)] || 'application/octet-stream', body);
  } catch {
    send(res, 404, 'text/plain', 'not found');
  }
}).listen(port, '127.0.0.1', () => console.log(`demo origin on http://127.0.0.1:${port} (player: /player.html)`));

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'access-control-allow-origin': '*' });
  res.end(body);
}
