// A minimal Node server that hands out signed playback URLs: the place secrets live.
// Run: node examples/server.mjs, then GET http://127.0.0.1:8787/play?stream=live/match-42
import { createServer } from 'node:http';
import { signUrl } from 'streamgate';

const key = { alg: 'HS256', secret: process.env.STREAMGATE_SECRET ?? 'change-me-to-a-long-random-secret', kid: 'k1' };
const cdn = process.env.CDN_BASE ?? 'https://cdn.example.com';

createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const stream = url.searchParams.get('stream');
  if (url.pathname !== '/play' || !stream || !/^[\w-]+\/[\w-]+$/.test(stream)) {
    res.writeHead(400).end('give ?stream=app/name');
    return;
  }
  const playbackUrl = signUrl(`${cdn}/${stream}/index.m3u8`, {
    key,
    claims: { sub: 'viewer-from-your-session', streams: [stream], max_sessions: 2 },
    expiresIn: 600,
  });
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ playbackUrl }));
}).listen(8787, '127.0.0.1', () => console.log('signing server on http://127.0.0.1:8787/play?stream=live/match-42'));
