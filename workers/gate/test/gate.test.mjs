// End-to-end: the built gate in workerd (Miniflare), in front of the demo origin served
// by Miniflare's outbound service, which records what reached the origin.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ADMIN, KEY, admin, backend, edgeOnly, sg, startGate, token, hlsUris, expectDenied } from './support.mjs';

let GATE;
let gate;
let mf;
let origin;

before(async () => {
  gate = await startGate();
  ({ mf, origin, url: GATE } = gate);
});

after(() => mf && mf.dispose());

// Times the gates below are configured with, and the waits derived from them: credentials
// expire on whole seconds, so "past N seconds" is N + 1 s plus a margin, never a race.
const TTL = 2;
const IDLE = 5;
const IDLE_SHORT = 2;
const pastWholeSeconds = (seconds) => (seconds + 1) * 1000 + 100;

function get(path, { ip = '198.51.100.7', cf = {}, headers = {} } = {}) {
  return mf.dispatchFetch(`${GATE}${path}`, { headers: { 'CF-Connecting-IP': ip, ...headers }, cf });
}

describe('sessions expire when idle; the cookie transport', () => {
  let idle;
  before(async () => {
    idle = await startGate({ bindings: { SESSION_IDLE: String(IDLE_SHORT), COOKIE_TRANSPORT: 'on' } });
  });

  it('hands out a path-scoped, time-bounded session cookie that alone opens segments', async () => {
    const response = await idle.mf.dispatchFetch(`${idle.url}/hls/ts/index.m3u8?token=${token({ streams: ['hls/ts'] })}`);
    assert.equal(response.status, 200);
    const cookie = response.headers.get('set-cookie');
    // The token's stream is its Path; SESSION_TTL (120 s) plus the 8 s the VOD playlist plays.
    assert.match(cookie, /^streamgate=v1\.[^;]+; Path=\/hls\/ts\/; Max-Age=128; HttpOnly; Secure; SameSite=None$/);
    const value = cookie.split(';')[0];
    assert.equal((await idle.mf.dispatchFetch(`${idle.url}/hls/ts/seg_001.ts`, { headers: { Cookie: value } })).status, 200);
    const outside = await idle.mf.dispatchFetch(`${idle.url}/hls/fmp4/seg_001.m4s`, { headers: { Cookie: value } });
    assert.equal(outside.status, 403, 'the cookie is scoped to its stream');
  });
  after(() => idle && idle.mf.dispose());

  it('counts a token without jti under one key across reloads, so the limit holds while it plays', async () => {
    // WMSAuth, secure_link and many JWTs carry no jti: the session is keyed by the token's
    // fingerprint, and reloads with the session credential must count under that key.
    const t = token({ jti: undefined, max_sessions: 1 });
    const as = (ip) => ({ headers: { 'CF-Connecting-IP': ip } });
    const master = await idle.mf.dispatchFetch(`${idle.url}/hls/master.m3u8?token=${t}`, as('192.0.2.31'));
    assert.equal(master.status, 200);
    let variant = hlsUris(await master.text(), `${idle.url}/hls/master.m3u8`)[0];
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, (IDLE_SHORT * 1000) / 2.5)); // well within SESSION_IDLE
      const reload = await idle.mf.dispatchFetch(variant.href, as('192.0.2.31'));
      assert.equal(reload.status, 200);
      variant = new URL(variant.pathname + '?' + new URL(hlsUris(await reload.text(), variant.href)[0]).search.slice(1), idle.url);
    }
    // Over SESSION_IDLE (2 s) since the start, but the first viewer kept reloading.
    await expectDenied(await idle.mf.dispatchFetch(`${idle.url}/hls/master.m3u8?token=${t}`, as('192.0.2.32')), 429, 'too_many_sessions');
  });

  it('frees a slot after the idle time', async () => {
    const t = token({ max_sessions: 1 });
    const from = (ip) => idle.mf.dispatchFetch(`${idle.url}/hls/master.m3u8?token=${t}`, { headers: { 'CF-Connecting-IP': ip } });
    assert.equal((await from('192.0.2.1')).status, 200);
    assert.equal((await from('192.0.2.2')).status, 429);
    await new Promise((resolve) => setTimeout(resolve, pastWholeSeconds(IDLE_SHORT)));
    assert.equal((await from('192.0.2.2')).status, 200, 'the first session went idle');
  });
});

describe('live playback outlives the session credential', () => {
  let live;
  before(async () => {
    // Credentials expire on whole seconds: a 2 s TTL always leaves a player at least 1 s.
    live = await startGate({ bindings: { SESSION_TTL: String(TTL), SESSION_IDLE: String(IDLE) } });
  });
  after(() => live && live.mf.dispose());
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const at = (url) => live.mf.dispatchFetch(url, { headers: { 'CF-Connecting-IP': '198.51.100.90' } });

  it('renews a lapsed credential on live playlist reloads while the session is active, never on segments', async () => {
    const master = await at(`${live.url}/hls/live/master.m3u8?token=${token()}`);
    // The URL a player keeps reloading for as long as the stream plays.
    const variant = hlsUris(await master.text(), `${live.url}/hls/live/master.m3u8`)[0];
    const first = await at(variant.href);
    assert.equal(first.status, 200);
    const oldSegment = hlsUris(await first.text(), variant.href)[0];
    for (let i = 0; i < 3; i++) {
      await sleep(pastWholeSeconds(TTL)); // past SESSION_TTL, within SESSION_IDLE of the previous reload
      const reload = await at(variant.href);
      assert.equal(reload.status, 200, `reload ${i}: ${await reload.clone().text()}`);
      const segment = hlsUris(await reload.text(), variant.href)[0];
      assert.equal((await at(segment.href)).status, 200, 'fresh credentials in the renewed playlist');
    }
    await expectDenied(await at(oldSegment.href), 403, 'expired');
    await sleep(pastWholeSeconds(IDLE)); // no reload for longer than SESSION_IDLE: the session ended
    await expectDenied(await at(variant.href), 403, 'expired');
  });

  it('points a live MPD at itself with a fresh credential, so refreshes outlive the entry token', async () => {
    const entry = token();
    const first = await at(`${live.url}/dash/live.mpd?token=${entry}&lang=en`);
    assert.equal(first.status, 200);
    let location = /<Location>([^<]+)<\/Location>/.exec(await first.text())[1].replaceAll('&amp;', '&');
    assert.ok(location.startsWith(`${live.url}/dash/live.mpd?lang=en&sgs=v1.`), location);
    const vod = await (await at(`${live.url}/dash/manifest.mpd?token=${entry}`)).text();
    assert.doesNotMatch(vod, /<Location>/, 'a static MPD is never refreshed');
    for (let i = 0; i < 3; i++) {
      await sleep(pastWholeSeconds(TTL)); // past each credential's SESSION_TTL
      const refresh = await at(location);
      assert.equal(refresh.status, 200, await refresh.clone().text());
      location = /<Location>([^<]+)<\/Location>/.exec(await refresh.text())[1].replaceAll('&amp;', '&');
    }
    assert.doesNotMatch(location, /token=/, 'refreshes never depend on the entry token');
  });

  it('keeps a VOD session counted by its segment requests, whose credentials cover the presentation', async () => {
    const t = token({ max_sessions: 1 });
    const master = await at(`${live.url}/hls/master.m3u8?token=${t}`);
    const variant = hlsUris(await master.text(), `${live.url}/hls/master.m3u8`)[0];
    const segments = hlsUris(await (await at(variant.href)).text(), variant.href);
    // The VOD playlist is loaded once; its segments are fetched for as long as it plays,
    // long after SESSION_TTL (2 s) and SESSION_IDLE (5 s).
    for (const segment of [...segments, ...segments]) {
      await sleep((IDLE * 1000) / 6); // many times within SESSION_IDLE, for longer than it
      assert.equal((await at(segment.href)).status, 200, segment.pathname);
    }
    const other = await live.mf.dispatchFetch(`${live.url}/hls/master.m3u8?token=${t}`, { headers: { 'CF-Connecting-IP': '203.0.113.99' } });
    await expectDenied(other, 429, 'too_many_sessions');
  });

  it('renews a lapsed playlist URL only for the player that has been using it', async () => {
    const as = (ua) => ({ headers: { 'CF-Connecting-IP': '198.51.100.91', 'User-Agent': ua } });
    const master = await live.mf.dispatchFetch(`${live.url}/hls/master.m3u8?token=${token()}`, as('Player/1.0'));
    const variant = hlsUris(await master.text(), `${live.url}/hls/master.m3u8`)[0];
    assert.equal((await live.mf.dispatchFetch(variant.href, as('Player/1.0'))).status, 200);
    await sleep(pastWholeSeconds(TTL));
    await expectDenied(await live.mf.dispatchFetch(variant.href, as('Lavf/60.16.100')), 403, 'expired');
    assert.equal((await live.mf.dispatchFetch(variant.href, as('Player/1.0'))).status, 200, 'the player itself goes on');
  });

  it('refuses the renewal of a revoked token at once', async () => {
    const t = token({ jti: undefined });
    const master = await at(`${live.url}/hls/master.m3u8?token=${t}`);
    const variant = hlsUris(await master.text(), `${live.url}/hls/master.m3u8`)[0];
    assert.equal((await at(variant.href)).status, 200);
    await sleep(pastWholeSeconds(TTL));
    assert.equal((await admin(live, '/admin/revoke', { token: t })).status, 200);
    await expectDenied(await at(variant.href), 403, 'revoked');
  });
});

describe('public paths', () => {
  let open;
  before(async () => {
    open = await startGate({ bindings: { PUBLIC_PATHS: 'posters, hls/fmp4/init.mp4' } });
  });
  after(() => open && open.mf.dispose());
  const fetchAs = (path, ip = '198.51.100.70') => open.mf.dispatchFetch(`${open.url}${path}`, { headers: { 'CF-Connecting-IP': ip } });

  it('serves PUBLIC_PATHS without a credential, and nothing else', async () => {
    const poster = await fetchAs('/posters/demo.jpg');
    assert.equal(poster.status, 200);
    assert.equal(poster.headers.get('content-type'), 'image/jpeg');
    assert.ok((await poster.arrayBuffer()).byteLength > 1000);
    assert.equal((await fetchAs('/hls/fmp4/init.mp4')).status, 200);
    await expectDenied(await fetchAs('/hls/fmp4/seg_000.m4s'), 401, 'missing_token');
    await expectDenied(await fetchAs('/hls/master.m3u8'), 401, 'missing_token');
    // Matching is on the normalized path: a dot segment cannot climb out of a public path.
    await expectDenied(await fetchAs('/posters/../hls/ts/seg_000.ts'), 401, 'missing_token');
    await expectDenied(await fetchAs('/posters/%2e%2e/hls/ts/seg_000.ts'), 401, 'missing_token');
    await expectDenied(await fetchAs('/posters%2f..%2fhls/ts/seg_000.ts'), 403, 'scope_mismatch');
    await expectDenied(await fetchAs('/posterstash/x.jpg'), 401, 'missing_token');
  });

  it('strips credentials and applies the block list on public paths', async () => {
    open.origin.length = 0;
    assert.equal((await fetchAs(`/posters/demo.jpg?token=${token()}&w=320`)).status, 200);
    assert.deepEqual(open.origin, ['/posters/demo.jpg?w=320']);
    assert.equal((await admin(open, '/admin/block', { ip: '203.0.113.0/24' })).status, 200);
    await expectDenied(await fetchAs('/posters/demo.jpg', '203.0.113.9'), 403, 'ip_blocked');
  });

  edgeOnly('refuses settings that would open every stream or outlast every cap, naming them', async () => {
    const cases = [
      [{ PUBLIC_PATHS: 'posters,**/x' }, /PUBLIC_PATHS: public path "\*\*\/x" starts with a wildcard/],
      [{ GUARDIAN_REVOKE_TTL: '315360001' }, /GUARDIAN_REVOKE_TTL must be at most 315360000 seconds, not 315360001/],
      [{ SESSION_URL_TOKEN_SCOPE: 'origin' }, /SESSION_URL_TOKEN_SCOPE: unknown variant `origin`/],
    ];
    for (const [bindings, message] of cases) {
      const wrong = await startGate({ bindings });
      try {
        const response = await wrong.mf.dispatchFetch(`${wrong.url}/posters/demo.jpg`);
        assert.equal(response.status, 500);
        const body = await response.json();
        assert.equal(body.error, 'misconfigured');
        assert.match(body.message, message);
      } finally {
        await wrong.mf.dispose();
      }
    }
  });
});

describe('gate', () => {
  it('reports health', async () => {
    const response = await get('/healthz');
    assert.equal(response.status, 200);
    assert.ok((await response.json()).schemes.includes('jwt'));
  });

  it('plays HLS end to end: manifests rewritten, every URI fetched, no credential reaches the origin', async () => {
    origin.length = 0;
    const master = await get(`/hls/master.m3u8?token=${token()}`);
    assert.equal(master.status, 200);
    const text = await master.text();
    const variants = hlsUris(text, `${GATE}/hls/master.m3u8`);
    assert.equal(variants.length, 2);
    let segments = 0;
    for (const variant of variants) {
      assert.ok(variant.searchParams.get('sgs'), `no session credential on ${variant}`);
      const playlist = await get(variant.pathname + variant.search);
      assert.equal(playlist.status, 200, variant.href);
      for (const uri of hlsUris(await playlist.text(), variant.href)) {
        assert.ok(uri.searchParams.get('sgs'), uri.href);
        const response = await get(uri.pathname + uri.search);
        assert.equal(response.status, 200, uri.href);
        assert.ok((await response.arrayBuffer()).byteLength > 0);
        segments += 1;
      }
    }
    assert.ok(segments >= 8, `fetched ${segments} segments and init segments`);
    assert.ok(origin.length >= segments + 3);
    for (const request of origin) assert.doesNotMatch(request, /token=|sgs=/, `credential reached the origin: ${request}`);
  });

  it('plays DASH: templates and init segments carry the credential', async () => {
    const mpd = await get(`/dash/manifest.mpd?token=${token()}`);
    assert.equal(mpd.status, 200);
    const text = await mpd.text();
    const media = [...text.matchAll(/(?:media|initialization)="([^"]+)"/g)].map((m) => m[1].replaceAll('&amp;', '&'));
    assert.ok(media.length >= 4 && media.every((m) => m.includes('sgs=')), text);
    const init = media.find((m) => m.startsWith('init-')).replace('$RepresentationID$', '0');
    const chunk = media.find((m) => m.startsWith('chunk-')).replace('$RepresentationID$', '0').replace('$Number%03d$', '001');
    for (const path of [init, chunk]) assert.equal((await get(`/dash/${path}`)).status, 200, path);
  });

  it('keeps LL-HLS and other parameters, strips only the credential', async () => {
    origin.length = 0;
    await get(`/hls/ts/index.m3u8?_HLS_msn=3&_HLS_part=1&token=${token()}&x=%20y`);
    assert.deepEqual(origin, ['/hls/ts/index.m3u8?_HLS_msn=3&_HLS_part=1&x=%20y']);
  });

  it('accepts a credential embedded in the path, for players that drop query strings', async () => {
    origin.length = 0;
    const response = await get(`/~sg/${token()}/hls/master.m3u8`);
    assert.equal(response.status, 200);
    assert.deepEqual(origin, ['/hls/master.m3u8']);
    await expectDenied(await get('/~sg/garbage/hls/master.m3u8'), 401, 'malformed');
  });

  it('accepts the credential from a cookie and from Authorization: Bearer', async () => {
    assert.equal((await get('/hls/ts/seg_000.ts', { headers: { Cookie: `a=b; streamgate=${token()}` } })).status, 200);
    assert.equal((await get('/hls/ts/seg_000.ts', { headers: { Authorization: `Bearer ${token()}` } })).status, 200);
  });

  it('answers every denial with its reason, never a 500', async () => {
    await expectDenied(await get('/hls/master.m3u8'), 401, 'missing_token');
    await expectDenied(await get('/hls/master.m3u8?token=garbage'), 401, 'malformed');
    await expectDenied(await get(`/hls/master.m3u8?token=${'x'.repeat(9000)}`), 401, 'malformed');
    await expectDenied(await get(`/hls/master.m3u8?token=${token({}, { now: 1_600_000_000 })}`), 403, 'expired');
    await expectDenied(await get(`/hls/master.m3u8?token=${token({ nbf: Math.floor(Date.now() / 1000) + 3600 }, { expiresIn: 7200 })}`), 403, 'not_yet_valid');
    await expectDenied(await get(`/private/a.m3u8?token=${token()}`), 403, 'scope_mismatch');
    await expectDenied(await get(`/hls/../private/a.m3u8?token=${token()}`), 403, 'scope_mismatch');
    await expectDenied(await get(`/hls/master.m3u8?token=${token({ ip: '203.0.113.0/24' })}`), 403, 'ip_mismatch');
    const forged = token().slice(0, -4) + 'AAAA';
    await expectDenied(await get(`/hls/master.m3u8?token=${forged}`), 403, 'bad_signature');
    await expectDenied(await get(`/hls/master.m3u8?token=${sg.signPlaybackToken({}, { ...KEY, kid: 'other' }, { expiresIn: 60 })}`), 403, 'unknown_key');
    const [, payload] = token().split('.');
    await expectDenied(await get(`/hls/master.m3u8?token=${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`), 403, 'alg_not_allowed');
    const scoped = token({ referrers: ['player.example.com'], user_agents: ['*hls.js*'] });
    await expectDenied(await get(`/hls/master.m3u8?token=${scoped}`, { headers: { Referer: 'https://pirate.example/', 'User-Agent': 'hls.js' } }), 403, 'referrer_denied');
    await expectDenied(await get(`/hls/master.m3u8?token=${scoped}`, { headers: { Referer: 'https://player.example.com/', 'User-Agent': 'ffmpeg' } }), 403, 'user_agent_denied');
    assert.equal((await get(`/hls/master.m3u8?token=${scoped}`, { headers: { Referer: 'https://player.example.com/', 'User-Agent': 'hls.js/1.7' } })).status, 200);
    const publish = await mf.dispatchFetch(`${GATE}/hls/master.m3u8?token=${token()}`, { method: 'POST', body: 'x', headers: { 'CF-Connecting-IP': '198.51.100.7' } });
    await expectDenied(publish, 403, 'purpose_mismatch');
    for (const junk of ['%', '%zz', '\u0000', 'v1.' + 'A'.repeat(100) + '.x']) {
      const response = await get(`/hls/master.m3u8?sgs=${encodeURIComponent(junk)}`);
      assert.ok([401, 403].includes(response.status), `${junk}: ${response.status}`);
    }
  });

  edgeOnly('refuses by the country Cloudflare names (request.cf)', async () => {
    const geo = token({ access_rules: [{ type: 'ip.geoip.country', action: 'block', country: ['FR'] }] });
    await expectDenied(await get(`/hls/master.m3u8?token=${geo}`, { cf: { country: 'FR', asn: 3215 } }), 403, 'geo_denied');
    assert.equal((await get(`/hls/master.m3u8?token=${geo}`, { cf: { country: 'DE' } })).status, 200);
  });

  it('admits exactly max_sessions under parallel starts, and a reload is a heartbeat', async () => {
    const t = token({ max_sessions: 2 });
    const starts = await Promise.all(Array.from({ length: 6 }, (_, i) => get(`/hls/master.m3u8?token=${t}`, { ip: `203.0.113.${10 + i}` })));
    const statuses = starts.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 429, 429, 429, 429]);
    const denied = starts.find((r) => r.status === 429);
    assert.equal(denied.headers.get('x-streamgate-reason'), 'too_many_sessions');
    const admitted = await starts.find((r) => r.status === 200).text();
    const variant = hlsUris(admitted, `${GATE}/hls/master.m3u8`)[0];
    assert.equal((await get(variant.pathname + variant.search)).status, 200, 'a reload of an admitted session passes');
  });

  it('lets the same viewer reconnect with the entry token without counting twice', async () => {
    const t = token({ max_sessions: 1 });
    const viewer = { ip: '198.51.100.50', headers: { 'User-Agent': 'hls.js test' } };
    assert.equal((await get(`/hls/master.m3u8?token=${t}`, viewer)).status, 200);
    assert.equal((await get(`/hls/master.m3u8?token=${t}`, viewer)).status, 200, 'page reload: same session');
    await expectDenied(await get(`/hls/master.m3u8?token=${t}`, { ...viewer, ip: '198.51.100.51' }), 429, 'too_many_sessions');
  });

  it('records usage per heartbeat: who, from where, and the media bytes served in between', async () => {
    const jti = `usage-${Date.now()}`;
    const viewer = { ip: '198.51.100.60', cf: { country: 'NL', asn: 64500, asOrganization: 'Example Hosting' }, headers: { Referer: 'https://player.example/', 'User-Agent': 'usage test' } };
    const master = await get(`/hls/master.m3u8?token=${token({ jti })}`, viewer);
    const variant = hlsUris(await master.text(), `${GATE}/hls/master.m3u8`)[0];
    const playlist = await get(variant.pathname + variant.search, viewer);
    const segments = hlsUris(await playlist.text(), variant.href).slice(0, 3);
    let served = 0;
    for (const segment of segments) {
      const response = await get(segment.pathname + segment.search, viewer);
      assert.equal(response.status, 200);
      served += (await response.arrayBuffer()).byteLength;
    }
    const ranged = await get(segments[0].pathname + segments[0].search, { ...viewer, headers: { ...viewer.headers, Range: 'bytes=0-999' } });
    assert.equal(ranged.status, 206);
    served += (await ranged.arrayBuffer()).byteLength;
    assert.equal((await get(variant.pathname + variant.search, viewer)).status, 200, 'the reload is the next heartbeat');

    const listed = await (await mf.dispatchFetch(`${GATE}/admin/sessions?jti=${jti}`, { headers: { Authorization: `Bearer ${ADMIN}` } })).json();
    assert.equal(listed.usage.length, 3, JSON.stringify(listed.usage));
    const [start, , reload] = listed.usage;
    assert.equal(start.ip, '198.51.100.60');
    if (backend === 'workerd') {
      // From request.cf; serve has no geo source.
      assert.equal(start.country, 'NL');
      assert.equal(start.asn, 64500);
      assert.equal(start.as_organization, 'Example Hosting');
    }
    assert.equal(start.referer, 'https://player.example/');
    assert.equal(start.user_agent, 'usage test');
    assert.equal(start.bytes, null, 'nothing served before the first playlist');
    assert.ok(served > 1000);
    assert.equal(reload.bytes, served, 'segment bytes (full and ranged) reported with the next heartbeat');
    assert.ok(listed.usage.every((u) => u.sid === reload.sid), 'one session');
  });

  it('revoking a token without jti by its text ends the sessions it opened', async () => {
    const t = token({ jti: undefined });
    const master = await get(`/hls/master.m3u8?token=${t}`);
    const variant = hlsUris(await master.text(), `${GATE}/hls/master.m3u8`)[0];
    const playlist = await get(variant.pathname + variant.search);
    const segment = hlsUris(await playlist.text(), variant.href)[0];
    assert.equal((await get(segment.pathname + segment.search)).status, 200);
    // Named by a signed URL: the fingerprint is of the canonical form, `jwt:` + header.payload.
    const revoked = await admin(gate, '/admin/revoke', { token: `${GATE}/hls/master.m3u8?token=${t}` });
    assert.equal(revoked.status, 200);
    const canonical = `jwt:${t.slice(0, t.lastIndexOf('.'))}`;
    assert.deepEqual((await revoked.json()).ids, [createHash('sha256').update(canonical).digest('hex')], 'revoked by its fingerprint');
    await expectDenied(await get(variant.pathname + variant.search), 403, 'revoked');
    await expectDenied(await get(segment.pathname + segment.search), 403, 'revoked');
    await expectDenied(await get(`/hls/master.m3u8?token=${t}`), 403, 'revoked');
  });

  it('revocation and IP blocking take effect; admin auth refuses wrong tokens', async () => {
    const jti = `rev-${Date.now()}`;
    const t = token({ jti });
    const master = await get(`/hls/master.m3u8?token=${t}`);
    const variant = hlsUris(await master.text(), `${GATE}/hls/master.m3u8`)[0];
    assert.equal((await admin(gate, '/admin/revoke', { jti }, 'wrong')).status, 401);
    assert.equal((await admin(gate, '/admin/revoke', { jti })).status, 200);
    await expectDenied(await get(`/hls/master.m3u8?token=${t}`), 403, 'revoked');
    await expectDenied(await get(variant.pathname + variant.search), 403, 'revoked');
    assert.equal((await admin(gate, '/admin/unrevoke', { jti })).status, 200);
    assert.equal((await get(`/hls/ts/seg_000.ts?token=${t}`)).status, 200);

    const garbage = await admin(gate, '/admin/revoke', { token: `${GATE}/hls/master.m3u8?x=1` });
    assert.equal(garbage.status, 400);
    assert.equal((await garbage.json()).error, 'invalid_input');
    const everyone = await admin(gate, '/admin/block', { ip: '0.0.0.0/0' });
    assert.equal(everyone.status, 400);
    assert.match((await everyone.json()).message, /"force": true/);

    assert.equal((await admin(gate, '/admin/block', { ip: '192.0.2.0/24' })).status, 200);
    await expectDenied(await get(`/hls/ts/seg_000.ts?token=${token()}`, { ip: '192.0.2.44' }), 403, 'ip_blocked');
    assert.equal((await admin(gate, '/admin/unblock', { ip: '192.0.2.0/24' })).status, 200);
    assert.equal((await get(`/hls/ts/seg_000.ts?token=${token()}`, { ip: '192.0.2.44' })).status, 200);

    const sessions = await mf.dispatchFetch(`${GATE}/admin/sessions?jti=${jti}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    assert.equal(sessions.status, 200);
    const listed = await sessions.json();
    assert.ok(listed.usage.length >= 1 && listed.usage[0].ip === '198.51.100.7', JSON.stringify(listed));
  });
});
