// Adversarial end-to-end suite: each hole of the 2026-11-30 review (issue 8) as an HTTP
// request through the built gate in workerd (or `streamgate serve`, GATE_BACKEND=serve),
// with the status and reason it must get, and what must never reach the origin.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KEY, admin, backend, edgeOnly, sg, startGate, token, hlsUris, expectDenied } from './support.mjs';

const IP = '198.51.100.7';
const WMS = { scheme: 'wmsauth', secret: 'nimble wms secret', ipBound: true };
const EDGE = { scheme: 'edgeauth', key: 'a0b1c2d3e4f5061728394a5b6c7d8e9f' };
const LINK = { scheme: 'secure-link', secret: 'nginx secure link secret' };

let gate;
before(async () => {
  gate = await startGate({
    bindings: { PUBLIC_PATHS: 'posters', KEYS: JSON.stringify([KEY, WMS, EDGE, LINK]) },
  });
});
after(() => gate && gate.mf.dispose());

function send(path, { method = 'GET', ip = IP, headers = {}, body, cf = {} } = {}) {
  return gate.mf.dispatchFetch(`${gate.url}${path}`, { method, body, cf, headers: { 'CF-Connecting-IP': ip, ...headers } });
}

/** Runs `attempt` and asserts that nothing reached the origin meanwhile. */
async function nothingReachesTheOrigin(attempt) {
  const before = gate.requests.length;
  await attempt();
  assert.deepEqual(gate.requests.slice(before), [], 'a request reached the origin');
}

/** The session credential a manifest fetched with `entry` hands out. */
async function sessionCredential(entry, path = '/hls/ts/index.m3u8', options = {}) {
  const response = await send(`${path}?token=${entry}`, options);
  assert.equal(response.status, 200, await response.clone().text());
  return hlsUris(await response.text(), `${gate.url}${path}`)[0].searchParams.get('sgs');
}

describe('1. the path that is checked is the path that is fetched', () => {
  const dots = ['%252e%252e', '%252E%252E', '.%252e', '%252e.', '%2e%252e', '%25252e%25252e', '%252e%2e'];

  it('refuses double-encoded dot segments on public paths, without a credential', async () => {
    for (const dot of dots) {
      await nothingReachesTheOrigin(async () => {
        await expectDenied(await send(`/posters/${dot}/hls/master.m3u8`), 403, 'scope_mismatch');
        await expectDenied(await send(`/posters/${dot}/${dot}/hls/ts/seg_000.ts`), 403, 'scope_mismatch');
      });
    }
  });

  it('refuses them with every credential transport and with session credentials', async () => {
    const t = token({ streams: ['hls/**'] });
    const sgs = await sessionCredential(t);
    const transports = [
      (path) => send(`${path}?token=${t}`),
      (path) => send(path, { headers: { Cookie: `streamgate=${t}` } }),
      (path) => send(path, { headers: { Authorization: `Bearer ${t}` } }),
      (path) => send(`/~sg/${t}${path}`),
      (path) => send(`${path}?sgs=${sgs}`),
    ];
    for (const dot of dots) {
      for (const via of transports) {
        await nothingReachesTheOrigin(async () => {
          await expectDenied(await via(`/hls/a/${dot}/${dot}/private/secret.ts`), 403, 'scope_mismatch');
          await expectDenied(await via(`/hls/${dot}/private/secret.ts`), 403, 'scope_mismatch');
        });
      }
    }
  });

  it('refuses what a second decoder or another origin server reads differently', async () => {
    const t = token({ streams: ['hls/**'] });
    for (const path of ['/hls/ts/seg_000.ts%3bx=1', '/hls/ts;x=1/seg_000.ts', '/hls/%25/x.ts', '/hls/ts/%3f.ts', '/hls/ts/%23.ts', '/hls/ts/%5c..%5cx.ts', '/hls/ts/%09.ts', '/hls%2fts/seg_000.ts']) {
      await nothingReachesTheOrigin(async () => {
        await expectDenied(await send(`${path}?token=${t}`), 403, 'scope_mismatch');
      });
    }
  });

  it('fetches exactly the normalized path, each segment re-encoded', async () => {
    const before = gate.requests.length;
    const response = await send(`/hls/ts/%2e/./seg_000.ts?token=${token()}`);
    assert.equal(response.status, 200);
    assert.deepEqual(gate.requests.slice(before).map((r) => r.url), ['/hls/ts/seg_000.ts']);
  });
});

describe('2. methods', () => {
  it('never forwards methods other than GET and HEAD on a play token, nor on a public path', async () => {
    for (const method of ['DELETE', 'PATCH', 'PROPFIND', 'MKCOL', 'LOCK', 'REPORT', 'SEARCH']) {
      await nothingReachesTheOrigin(async () => {
        await expectDenied(await send(`/hls/ts/seg_000.ts?token=${token()}`, { method }), 405, 'method_not_allowed');
        await expectDenied(await send('/posters/demo.jpg', { method }), 405, 'method_not_allowed');
      });
    }
    assert.equal((await send(`/hls/ts/seg_000.ts?token=${token()}`, { method: 'HEAD' })).status, 200);
  });

  it('answers a CORS preflight itself', async () => {
    await nothingReachesTheOrigin(async () => {
      const preflight = await send('/hls/master.m3u8', { method: 'OPTIONS', headers: { Origin: 'https://player.example', 'Access-Control-Request-Method': 'GET' } });
      assert.equal(preflight.status, 204);
    });
  });

  it('forwards POST and PUT only with a publish token, body included', async () => {
    await nothingReachesTheOrigin(async () => {
      await expectDenied(await send(`/ingest/a.ts?token=${token({ streams: ['ingest/**'] })}`, { method: 'POST', body: 'x' }), 403, 'purpose_mismatch');
      await expectDenied(await send('/posters/demo.jpg', { method: 'PUT', body: 'x' }), 401, 'missing_token');
    });
    const publisher = token({ streams: ['ingest/**'], purpose: 'publish' });
    const before = gate.requests.length;
    const response = await send(`/ingest/a.ts?token=${publisher}`, { method: 'PUT', body: 'segment bytes', headers: { 'Content-Type': 'video/mp2t' } });
    assert.equal(response.status, 201, await response.clone().text());
    const [forwarded] = gate.requests.slice(before);
    assert.equal(forwarded.method, 'PUT');
    assert.equal(forwarded.url, '/ingest/a.ts');
    assert.equal(forwarded.body, 'segment bytes');
  });
});

describe('3. session credentials are never wider than their token', () => {
  it('covers the token\'s streams, not the manifest\'s folder', async () => {
    const sgs = await sessionCredential(token({ streams: ['hls/ts'] }));
    assert.equal((await send(`/hls/ts/seg_000.ts?sgs=${sgs}`)).status, 200);
    await nothingReachesTheOrigin(async () => {
      await expectDenied(await send(`/hls/fmp4/seg_000.m4s?sgs=${sgs}`), 403, 'scope_mismatch');
      await expectDenied(await send(`/hls/master.m3u8?sgs=${sgs}`), 403, 'scope_mismatch');
    });
  });

  it('opens sibling folders that the token covers', async () => {
    const sgs = await sessionCredential(token({ streams: ['hls/**'] }));
    assert.equal((await send(`/hls/fmp4/seg_000.m4s?sgs=${sgs}`)).status, 200, 'a sibling rendition folder');
  });

  it('carries the IP binding, referrers, user agents and country rules of the token', async () => {
    const bound = await sessionCredential(token({ ip: '198.51.100.0/24' }));
    await expectDenied(await send(`/hls/ts/seg_000.ts?sgs=${bound}`, { ip: '203.0.113.5' }), 403, 'ip_mismatch');
    const tv = { headers: { Referer: 'https://tv.example.com/', 'User-Agent': 'hls.js/1.7' } };
    const fenced = await sessionCredential(token({ referrers: ['tv.example.com'], user_agents: ['hls.js*'], access_rules: [{ type: 'ip.geoip.country', action: 'block', country: ['FR'] }] }), undefined, tv);
    assert.equal((await send(`/hls/ts/seg_000.ts?sgs=${fenced}`, tv)).status, 200);
    await expectDenied(await send(`/hls/ts/seg_000.ts?sgs=${fenced}`, { headers: { ...tv.headers, Referer: 'https://pirate.test/' } }), 403, 'referrer_denied');
    await expectDenied(await send(`/hls/ts/seg_000.ts?sgs=${fenced}`, { headers: { ...tv.headers, 'User-Agent': 'Lavf/60' } }), 403, 'user_agent_denied');
    if (backend === 'workerd') {
      // The country comes from request.cf; serve has no geo source.
      await expectDenied(await send(`/hls/ts/seg_000.ts?sgs=${fenced}`, { ...tv, cf: { country: 'FR' } }), 403, 'geo_denied');
    }
  });

  it('carries the IP hashed into WMSAuth and secure_link signatures', async () => {
    const wms = sg.wmsAuthSign({ key: WMS.secret, ip: IP, validMinutes: 20 });
    const response = await send(`/hls/ts/index.m3u8?wmsAuthSign=${encodeURIComponent(wms)}`);
    assert.equal(response.status, 200, await response.clone().text());
    const sgs = hlsUris(await response.text(), `${gate.url}/hls/ts/index.m3u8`)[0].searchParams.get('sgs');
    assert.equal((await send(`/hls/ts/seg_000.ts?sgs=${sgs}`)).status, 200);
    await expectDenied(await send(`/hls/ts/seg_000.ts?sgs=${sgs}`, { ip: '203.0.113.5' }), 403, 'ip_mismatch');
    const link = sg.signUrl(`${gate.url}/hls/ts/index.m3u8`, { scheme: 'secure-link', secret: LINK.secret, ip: IP, expiresIn: 600 });
    const linked = await send(link.slice(gate.url.length));
    assert.equal(linked.status, 200, await linked.clone().text());
    // A token signed for one URL: its sessions cover that playlist only (see below).
    const linkSgs = hlsUris(await linked.text(), link)[0].searchParams.get('sgs');
    assert.equal((await send(`/hls/ts/index.m3u8?sgs=${linkSgs}`)).status, 200);
    await expectDenied(await send(`/hls/ts/index.m3u8?sgs=${linkSgs}`, { ip: '203.0.113.5' }), 403, 'ip_mismatch');
  });

  it('gives a token signed for one URL sessions for that URL only, unless the operator widens them', async () => {
    const playlist = '/hls/ts/index.m3u8';
    const urlToken = () => sg.edgeAuthToken({ key: EDGE.key, url: playlist, windowSeconds: 300 });
    const credentialFrom = async (target) => {
      const response = await target.mf.dispatchFetch(`${target.url}${playlist}?hdnts=${urlToken()}`, { headers: { 'CF-Connecting-IP': IP } });
      assert.equal(response.status, 200, await response.clone().text());
      return hlsUris(await response.text(), `${target.url}${playlist}`)[0].searchParams.get('sgs');
    };
    const strict = await credentialFrom(gate);
    assert.equal((await send(`${playlist}?sgs=${strict}`)).status, 200, 'the playlist reloads');
    await nothingReachesTheOrigin(async () => {
      await expectDenied(await send(`/hls/ts/seg_000.ts?sgs=${strict}`), 403, 'scope_mismatch');
    });
    const widened = await startGate({
      bindings: { KEYS: JSON.stringify([KEY, EDGE]), SESSION_URL_TOKEN_SCOPE: 'directory' },
    });
    try {
      const sgs = await credentialFrom(widened);
      const fetchWith = (path) => widened.mf.dispatchFetch(`${widened.url}${path}?sgs=${sgs}`, { headers: { 'CF-Connecting-IP': IP } });
      assert.equal((await fetchWith('/hls/ts/seg_000.ts')).status, 200, 'the playlist\'s directory');
      await expectDenied(await fetchWith('/hls/fmp4/seg_000.m4s'), 403, 'scope_mismatch');
    } finally {
      await widened.mf.dispose();
    }
  });
});

describe('9. no credential reaches the origin, in any header', () => {
  it('strips every scheme and transport: query, path, cookie, Bearer', async () => {
    const jwt = token();
    const wms = sg.wmsAuthSign({ key: WMS.secret, ip: IP, validMinutes: 20 });
    const edge = sg.edgeAuthToken({ key: EDGE.key, acl: '/hls/*', windowSeconds: 300 });
    const link = sg.signUrl(`${gate.url}/hls/ts/seg_000.ts`, { scheme: 'secure-link', secret: LINK.secret, ip: IP, expiresIn: 600 });
    const sgs = await sessionCredential(jwt);
    const attempts = [
      [`/hls/ts/seg_000.ts?token=${jwt}`, {}],
      [`/hls/ts/seg_000.ts?wmsAuthSign=${encodeURIComponent(wms)}`, {}],
      [`/hls/ts/seg_000.ts?hdnts=${edge}`, {}],
      [`/hls/ts/seg_000.ts?__token__=${edge}`, {}],
      [link.slice(gate.url.length), {}],
      [`/hls/ts/seg_000.ts?sgs=${sgs}`, {}],
      [`/~sg/${jwt}/hls/ts/seg_000.ts`, {}],
      ['/hls/ts/seg_000.ts', { headers: { Cookie: `theme=dark; streamgate=${jwt}` } }],
      ['/hls/ts/seg_000.ts', { headers: { Authorization: `Bearer ${jwt}` } }],
    ];
    const secrets = [jwt, wms, encodeURIComponent(wms), edge, sgs, 'md5=', 'streamgate=', 'Bearer'];
    for (const [path, options] of attempts) {
      const before = gate.requests.length;
      const response = await send(path, { ...options, headers: { ...options.headers, Range: 'bytes=0-99' } });
      assert.equal(response.status, 206, `${path}: ${await response.clone().text()}`);
      const reached = gate.requests.slice(before);
      assert.equal(reached.length, 1, path);
      const seen = JSON.stringify(reached[0]);
      for (const secret of secrets) assert.ok(!seen.includes(secret), `${secret.slice(0, 20)}… reached the origin via ${path}: ${seen}`);
      assert.deepEqual(Object.keys(reached[0].headers).filter((h) => ['authorization', 'cookie'].includes(h)), []);
      assert.equal(reached[0].headers.range, 'bytes=0-99', 'what a player needs still goes through');
    }
  });
});

describe('9. revocation through the session hub, with KV lagging', () => {
  edgeOnly('cuts a playing session off at its next playlist reload even when KV still says not revoked', async () => {
    const jti = `lag-${Date.now()}`;
    const t = token({ jti });
    const master = await send(`/hls/master.m3u8?token=${t}`);
    const variant = hlsUris(await master.text(), `${gate.url}/hls/master.m3u8`)[0];
    // The player is playing: reloads and segments pass.
    const playlist = await send(variant.pathname + variant.search);
    assert.equal(playlist.status, 200);
    const segment = hlsUris(await playlist.text(), variant.href)[0];
    assert.equal((await send(segment.pathname + segment.search)).status, 200);
    assert.equal((await admin(gate, '/admin/revoke', { jti })).status, 200);
    // A KV replica that has not seen the write yet: the key is gone, and the isolate's
    // cache of it (10 s) has run out.
    await (await gate.mf.getKVNamespace('REVOCATIONS')).delete(`revoked:${jti}`);
    await new Promise((resolve) => setTimeout(resolve, 10_500));
    assert.equal((await send(`/hls/ts/seg_000.ts?token=${token()}`)).status, 200, 'the gate is up');
    await expectDenied(await send(variant.pathname + variant.search), 403, 'revoked');
  });
});
