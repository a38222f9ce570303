// Token Guardian end to end in workerd: the actions the Guardian view takes (revoke, block
// an IP, block a referrer, mark as expected), their log and their undo, and the view's
// files under their Content-Security-Policy.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN, startGate, token } from './support.mjs';

let gate;
before(async () => {
  gate = await startGate({ bindings: { PUBLIC_PATHS: 'posters' } });
});
after(() => gate && gate.mf.dispose());

const IP = '198.51.100.7';
const send = (path, headers = {}) => gate.mf.dispatchFetch(`${gate.url}${path}`, { headers: { 'CF-Connecting-IP': IP, ...headers } });
const api = async (path, body) => {
  const response = await gate.mf.dispatchFetch(`${gate.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { Authorization: `Bearer ${ADMIN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
};

async function expectDenied(response, status, reason) {
  const text = await response.text();
  assert.equal(response.status, status, text);
  assert.equal(response.headers.get('x-streamgate-reason'), reason, text);
}

describe('actions from the Guardian view', () => {
  it('blocks a referrer at once, on protected and public paths, and logs it with its undo', async () => {
    const t = token();
    const pirate = { Referer: 'https://watch.pirate.example/embed' };
    assert.equal((await send(`/hls/ts/seg_000.ts?token=${t}`, pirate)).status, 200);
    const blocked = await api('/admin/referrers/block', { host: '*.pirate.example', reason: 'embeds our stream' });
    assert.equal(blocked.status, 200, JSON.stringify(blocked.body));
    await expectDenied(await send(`/hls/ts/seg_000.ts?token=${t}`, pirate), 403, 'referrer_denied');
    await expectDenied(await send('/posters/demo.jpg', pirate), 403, 'referrer_denied');
    assert.equal((await send(`/hls/ts/seg_000.ts?token=${t}`, { Referer: 'https://tv.example.com/' })).status, 200);
    assert.equal((await send(`/hls/ts/seg_000.ts?token=${t}`)).status, 200, 'no Referer is not a blocked one');

    const { body } = await api('/admin/actions');
    const logged = body.actions.find((a) => a.id === blocked.body.action);
    assert.equal(logged.action, 'block_referrer');
    assert.equal(logged.actor, 'operator');
    assert.equal(logged.target, '*.pirate.example');
    assert.equal(logged.reason, 'embeds our stream');
    assert.equal(logged.undone, false);

    const undone = await api('/admin/actions/undo', { id: logged.id });
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    assert.equal((await send(`/hls/ts/seg_000.ts?token=${t}`, pirate)).status, 200, 'unblocked');
    const again = await api('/admin/actions/undo', { id: logged.id });
    assert.equal(again.status, 409);
    const after = (await api('/admin/actions')).body.actions;
    assert.equal(after.find((a) => a.id === logged.id).undone, true);
    assert.equal(after[0].action, 'unblock_referrer', 'the undo is logged too');
  });

  it('refuses what is not a host name, and names the problem', async () => {
    for (const host of ['*', 'https://pirate.example/', 'pirate.example/x', '', 'com']) {
      const { status, body } = await api('/admin/referrers/block', { host });
      assert.equal(status, 400, host);
      assert.equal(body.error, 'invalid_input');
    }
    const wide = await api('/admin/block', { ip: '0.0.0.0/0' });
    assert.equal(wide.status, 400);
    assert.match(wide.body.message, /force/);
  });

  it('revokes with a reason and undoes it', async () => {
    const jti = `guardian-${Date.now()}`;
    const t = token({ jti });
    const revoked = await api('/admin/revoke', { jti, reason: 'shared on a forum', ttl: 3600 });
    assert.equal(revoked.status, 200);
    await expectDenied(await send(`/hls/ts/seg_000.ts?token=${t}`), 403, 'revoked');
    const logged = (await api('/admin/actions')).body.actions.find((a) => a.id === revoked.body.action);
    assert.deepEqual([logged.action, logged.target, logged.ttl, logged.reason], ['revoke', jti, 3600, 'shared on a forum']);
    assert.equal((await api('/admin/actions/undo', { id: logged.id })).status, 200);
    assert.equal((await send(`/hls/ts/seg_000.ts?token=${t}`)).status, 200, 'playing again');
  });

  it('marks an indicator as expected for a token, a network or an ASN', async () => {
    for (const target of [{ token: 'tok-1' }, { network: '203.0.113.0/24' }, { asn: 64500 }]) {
      const { status, body } = await api('/admin/expect', { indicator: 'hosting_network', ...target });
      assert.equal(status, 200, JSON.stringify(body));
    }
    assert.equal((await api('/admin/expect', { indicator: 'hosting_network', token: 'a', asn: 1 })).status, 400);
    assert.equal((await api('/admin/expect', { indicator: 'hosting_network', network: 'not-an-ip' })).status, 400);
    const actions = (await api('/admin/actions')).body.actions.slice(0, 3).map((a) => a.target);
    assert.deepEqual(actions, ['hosting_network for asn 64500', 'hosting_network for network 203.0.113.0/24', 'hosting_network for token tok-1']);
  });

  it('serves the view without a credential, under a strict CSP, and the API only with one', async () => {
    for (const path of ['/admin/', '/admin/app.js', '/admin/app.css']) {
      const response = await send(path);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    }
    assert.match(await (await send('/admin/')).text(), /<form/i, 'a sign-in form');
    assert.equal((await send('/admin/actions')).status, 401);
    assert.equal((await send('/admin/actions', { Authorization: 'Bearer wrong' })).status, 401);
  });
});
