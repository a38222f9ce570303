// When the session store (the Durable Object) fails: admitted sessions keep playing; new
// sessions get what ON_STORE_ERROR says (open: admitted; closed: 503).
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startGate, token } from './support.mjs';

let open;
let closed;
let working;

before(async () => {
  open = await startGate({ sessionStore: false, bindings: { ON_STORE_ERROR: 'open' } });
  closed = await startGate({ sessionStore: false, bindings: { ON_STORE_ERROR: 'closed' } });
  working = await startGate({ bindings: { ON_STORE_ERROR: 'closed' } });
});

after(async () => {
  await open?.mf.dispose();
  await closed?.mf.dispose();
  await working?.mf.dispose();
});

// Regression (review): the usage-record budget kept 64-bit network hashes, which the Durable
// Object's storage (JavaScript numbers) cannot hold, so storing every recorded heartbeat
// failed: with ON_STORE_ERROR=closed each new viewer got 503 (open hid it).
it('stores every heartbeat of a working session store, whatever the viewer\'s address', async () => {
  for (const ip of ['198.51.100.20', '203.0.113.21', '2001:db8:5::1']) {
    const response = await working.mf.dispatchFetch(`${working.url}/hls/master.m3u8?token=${token()}`, {
      headers: { 'CF-Connecting-IP': ip },
    });
    assert.equal(response.status, 200, `${ip}: ${await response.text()}`);
  }
});

it('fails open for new sessions when configured so', async () => {
  const response = await open.mf.dispatchFetch(`${open.url}/hls/master.m3u8?token=${token()}`);
  assert.equal(response.status, 200);
  assert.match(await response.text(), /sgs=v1\./);
});

it('fails closed for new sessions, while admitted sessions keep playing', async () => {
  const refused = await closed.mf.dispatchFetch(`${closed.url}/hls/master.m3u8?token=${token()}`);
  assert.equal(refused.status, 503);
  assert.equal((await refused.json()).error, 'session_store_unavailable');
  // A session admitted earlier (its credential issued with the same secret) reloads fine.
  const admitted = await (await open.mf.dispatchFetch(`${open.url}/hls/master.m3u8?token=${token()}`)).text();
  const variant = admitted.split('\n').find((l) => l.startsWith('ts/'));
  const reload = await closed.mf.dispatchFetch(`${closed.url}/hls/${variant}`);
  assert.equal(reload.status, 200);
});
