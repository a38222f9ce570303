// The Guardian view (/admin/) in headless Chromium, against the built gate in workerd:
// traffic from several simulated viewers (IPs, countries, providers, referrers) goes
// through the gate, then an operator signs in, sorts and filters the tokens, expands one,
// revokes it, blocks an IP range and a referrer, undoes from the actions log, and every
// action is checked at the gate itself. Under the page's CSP, with no violation logged;
// attacker-chosen text (User-Agent, sub, jti, AS organization) renders as text.
// Screenshots of each view go to workers/gate/test/screenshots/ (ignored by git).
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { ADMIN, root, startGate, token, hlsUris, expectDenied } from './support.mjs';

const { launch } = await import(join(root, 'npm', 'test', 'support', 'chromium.mjs'));

const SHOTS = join(root, 'workers', 'gate', 'test', 'screenshots');
const XSS = '<img src=x onerror=alert(1)>';
const CSP = {
  'default-src': "'none'",
  'script-src': "'self'",
  'style-src': "'self'",
  'img-src': "'self' data:",
  'connect-src': "'self'",
  'form-action': "'self'",
  'base-uri': "'none'",
  'frame-ancestors': "'none'",
};

const run = Date.now().toString(36);
const SHARED = `shared-${run}`;
const NORMAL = `normal-${run}`;
const EVIL = `${XSS}-${run}`;
const viewers = {
  de: { ip: '198.51.100.10', cf: { country: 'DE', asn: 3320, asOrganization: 'Deutsche Telekom AG' }, referer: 'https://player.example/' },
  us: { ip: '203.0.113.20', cf: { country: 'US', asn: 16509, asOrganization: 'Amazon.com, Inc.' }, referer: 'https://pirate.test/watch' },
  br: { ip: '192.0.2.30', cf: { country: 'BR', asn: 28573, asOrganization: 'Claro NXT' }, referer: 'https://pirate.test/' },
  fr: { ip: '2001:db8::40', cf: { country: 'FR', asn: 3215, asOrganization: 'Orange' } },
  home: { ip: '198.51.100.11', cf: { country: 'DE', asn: 3320, asOrganization: 'Deutsche Telekom AG' }, referer: 'https://player.example/' },
  // A Referer host that is none: a block of it as written would cover every player.example host.
  wild: { ip: '198.51.100.12', cf: { country: 'DE', asn: 3320, asOrganization: 'Deutsche Telekom AG' }, referer: 'https://*.player.example/' },
  evil: { ip: '198.51.100.66', cf: { country: 'NL', asn: 64500, asOrganization: '<b onmouseover=alert(3)>Evil AS</b>' }, ua: XSS, referer: 'https://player.example/' },
};

let gate;
let browser;
const tokens = {};

function send(path, viewer = {}, extra = {}) {
  const headers = { 'CF-Connecting-IP': viewer.ip ?? '198.51.100.99', 'User-Agent': viewer.ua ?? 'Mozilla/5.0 (dashboard test)', ...extra };
  if (viewer.referer) headers.Referer = viewer.referer;
  return gate.mf.dispatchFetch(new URL(path, gate.url).href, { headers, cf: viewer.cf ?? {} });
}

/** A viewer plays a bit: master, media playlist, two segments, a playlist reload (a heartbeat). */
async function watch(t, viewer) {
  const master = await send(`/hls/master.m3u8?token=${t}`, viewer);
  assert.equal(master.status, 200, `${viewer.ip}: ${await master.clone().text()}`);
  const variant = hlsUris(await master.text(), `${gate.url}/hls/master.m3u8`)[0];
  const playlist = await send(variant.href, viewer);
  assert.equal(playlist.status, 200);
  for (const segment of hlsUris(await playlist.text(), variant.href).slice(0, 2)) {
    const response = await send(segment.href, viewer);
    assert.equal(response.status, 200);
    await response.arrayBuffer();
  }
  assert.equal((await send(variant.href, viewer)).status, 200);
}

const BUCKET = 2;

before(async () => {
  await mkdir(SHOTS, { recursive: true });
  await writeFile(join(SHOTS, '.gitignore'), '*\n');
  // Rollups flush at the end of each GUARDIAN_BUCKET: a short one, then wait it out.
  gate = await startGate({ listen: true, bindings: { GUARDIAN_BUCKET: String(BUCKET) } });
  tokens.shared = token({ jti: SHARED, sub: 'alice@example.com' });
  tokens.normal = token({ jti: NORMAL, sub: 'bob@example.com' });
  tokens.evil = token({ jti: EVIL, sub: `<script>alert(2)</script>` });
  for (const v of ['de', 'us', 'br', 'fr']) await watch(tokens.shared, viewers[v]);
  await watch(tokens.normal, viewers.home);
  await watch(tokens.evil, viewers.evil);
  await watch(token({ jti: `wild-${run}` }), viewers.wild);
  await new Promise((resolve) => setTimeout(resolve, (BUCKET + 2) * 1000));
  browser = await launch();
});

after(async () => {
  browser && (await browser.close());
  gate && (await gate.mf.dispose());
});

it('serves the page and its assets without the admin token, under the CSP; the API needs it', async () => {
  for (const [path, type] of [['/admin/', /^text\/html/], ['/admin/app.js', /javascript/], ['/admin/app.css', /^text\/css/]]) {
    const response = await fetch(`${gate.url}${path}`);
    assert.equal(response.status, 200, path);
    assert.match(response.headers.get('content-type') ?? '', type, path);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
    const csp = parseCsp(response.headers.get('content-security-policy'));
    for (const [directive, value] of Object.entries(CSP)) assert.equal(csp[directive], value, `${path}: ${directive}`);
    await response.arrayBuffer();
  }
  const unauthorized = await fetch(`${gate.url}/admin/tokens?window=3h`);
  assert.equal(unauthorized.status, 401);
  assert.equal((await unauthorized.json()).error, 'unauthorized');
});

it('the Guardian view: sign in, sort, filter, expand, revoke, block, undo; every action holds at the gate', async () => {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await context.newPage();
  const consoleErrors = [];
  const dialogs = [];
  const requests = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(`${m.text()} ${m.location().url ?? ''}`));
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('request', (r) => requests.push({ url: r.url(), authorization: r.headers().authorization }));
  // Runs outside the page's CSP (DevTools), records every violation the page reports.
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
  const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const resultText = async (kind) => {
    const el = page.locator(`#result.${kind}`);
    await el.waitFor({ state: 'visible' });
    return el.textContent();
  };
  const clearResult = () => page.evaluate(() => { document.getElementById('result').hidden = true; document.getElementById('result').className = 'message'; });

  const response = await page.goto(`${gate.url}/admin/`);
  assert.equal(response.status(), 200);
  assert.equal(parseCsp(response.headers()['content-security-policy'])['script-src'], "'self'");
  await shot('0-sign-in');

  // A wrong token: the API answers 401, the page stays on (returns to) the sign-in form.
  await page.fill('#admin-token', 'not-the-admin-token-0123456789abcdef0123');
  await page.click('#signin-form button[type=submit]');
  await page.locator('#signin-message').waitFor({ state: 'visible' });
  assert.match(await page.textContent('#signin-message'), /401/);
  assert.ok(await page.isVisible('#signin'));

  await page.fill('#admin-token', ADMIN);
  await page.click('#signin-form button[type=submit]');
  const row = (id) => page.locator(`#tokens-body tr.row[data-token="${cssString(id)}"]`);
  await row(SHARED).waitFor();
  await row(NORMAL).waitFor();
  await row(EVIL).waitFor();

  // Sorting: by distinct IPs, descending first, then ascending.
  const column = async (key) => {
    const index = await page.locator('#tokens-head th').evaluateAll((ths, k) => ths.findIndex((th) => th.dataset.key === k), key);
    return page.locator('#tokens-body tr.row').evaluateAll((trs, i) => trs.map((tr) => ({ token: tr.dataset.token, value: tr.children[i].textContent })), index);
  };
  await page.click('#tokens-head th[data-key="ips"] button');
  let ips = await column('ips');
  assert.equal(ips[0].token, SHARED, JSON.stringify(ips));
  assert.equal(Number(ips[0].value), 4, 'four distinct IPs');
  assert.deepEqual(ips.map((r) => Number(r.value)), ips.map((r) => Number(r.value)).sort((a, b) => b - a));
  assert.equal(await page.getAttribute('#tokens-head th[data-key="ips"]', 'aria-sort'), 'descending');
  await page.click('#tokens-head th[data-key="ips"] button');
  ips = await column('ips');
  assert.deepEqual(ips.map((r) => Number(r.value)), ips.map((r) => Number(r.value)).sort((a, b) => a - b));
  assert.equal(await page.getAttribute('#tokens-head th[data-key="ips"]', 'aria-sort'), 'ascending');
  await page.click('#tokens-head th[data-key="score"] button');
  const scores = (await column('score')).map((r) => parseFloat(r.value));
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));

  // The window: a day, then a custom from/to, then back to three hours.
  const tokensRequest = (re) => page.waitForRequest((r) => new URL(r.url()).pathname === '/admin/tokens' && re.test(new URL(r.url()).search));
  let asked = tokensRequest(/^\?window=1d$/);
  await page.selectOption('#window', '1d');
  await asked;
  await page.selectOption('#window', 'custom');
  asked = tokensRequest(/^\?from=\d+&to=\d+$/);
  await page.click('#apply-window');
  const custom = new URL((await asked).url()).searchParams;
  assert.ok(Number(custom.get('to')) - Number(custom.get('from')) === 6 * 3600, custom.toString());
  asked = tokensRequest(/^\?window=3h$/);
  await page.selectOption('#window', '3h');
  await asked;
  await row(SHARED).waitFor();

  // Filtering by severity: every row shown is at least as severe as asked.
  const rank = { none: 0, low: 1, medium: 2, high: 3 };
  const sharedSeverity = (await row(SHARED).locator('.badge').first().textContent()).trim();
  assert.ok(rank[sharedSeverity] >= 1, `four IPs in four countries: severity ${sharedSeverity}`);
  await page.selectOption('#severity', sharedSeverity);
  const shown = await page.locator('#tokens-body tr.row').evaluateAll((trs) => trs.map((tr) => [tr.dataset.token, tr.querySelector('.badge').textContent]));
  assert.ok(shown.some(([t]) => t === SHARED) && shown.every(([, s]) => rank[s] >= rank[sharedSeverity]), JSON.stringify(shown));
  assert.ok(!shown.some(([t]) => t === NORMAL), 'one viewer at home is not suspicious');
  await page.selectOption('#severity', '');

  // Filtering by text.
  await page.fill('#filter', 'bob@example');
  assert.deepEqual((await column('ips')).map((r) => r.token), [NORMAL]);
  await page.fill('#filter', '');
  assert.ok((await column('ips')).length >= 3);

  // Expanding a row: decoded payload, the IPs it played from, the activity chart.
  await row(SHARED).locator('button.expander').click();
  const detail = page.locator(`#tokens-body tr[data-detail-for="${cssString(SHARED)}"]`);
  await detail.locator('.detail').waitFor();
  assert.match(await detail.locator('pre.json').first().textContent(), new RegExp(`"jti": "${SHARED}"`));
  // IPv4 addresses as they are; IPv6 by their /64 (privacy addresses rotate inside it).
  for (const ip of ['de', 'us', 'br'].map((v) => viewers[v].ip).concat('2001:db8::/64')) await detail.locator(`tr[data-ip="${ip}"]`).waitFor();
  assert.equal(await detail.locator('svg.chart').count(), 1);
  await shot('1-tokens');

  // Attacker-chosen text renders as text: the jti, sub, User-Agent and AS organization.
  await row(EVIL).locator('button.expander').click();
  const evilDetail = page.locator(`#tokens-body tr[data-detail-for="${cssString(EVIL)}"]`);
  await evilDetail.locator('.detail').waitFor();
  assert.ok((await row(EVIL).locator('.token-id').textContent()).startsWith(XSS));
  assert.match(await row(EVIL).textContent(), /<script>alert\(2\)<\/script>/);
  assert.match(await evilDetail.textContent(), /Evil AS<\/b>/, 'the AS organization, as text');
  assert.ok((await evilDetail.locator('ul.ua').textContent()).includes(XSS), 'the User-Agent, as text');
  assert.equal(await page.locator('img').count(), 0, 'no <img> made it into the DOM');
  assert.equal(await page.locator('main script, main b').count(), 0);
  await shot('2-tokens-xss');
  await row(EVIL).locator('button.expander').click();

  // Mark an indicator of the shared token as expected for that token.
  const indicator = detail.locator('li.indicator').first();
  const code = await indicator.getAttribute('data-code');
  // Review: marks for a network or an ASN hold for every token; the choices say so.
  const scopes = await indicator.locator('select option').allTextContents();
  assert.equal(scopes[0], 'this token');
  assert.ok(scopes.length > 1 && scopes.slice(1).every((s) => s.endsWith('(every token)')), JSON.stringify(scopes));
  await indicator.locator('button.expect').click();
  assert.match(await resultText('ok'), new RegExp(`Mark ${code} as expected`));
  await clearResult();

  // Revoke from the expanded row: the gate denies the token right away.
  await detail.locator('button.revoke').click();
  assert.match(await resultText('ok'), /Revoke/);
  await row(SHARED).locator('.revoked-badge').waitFor();
  await detail.locator('button.unrevoke').waitFor();
  await shot('1b-tokens-revoked');
  await expectDenied(await send(`/hls/master.m3u8?token=${tokens.shared}`, viewers.de), 403, 'revoked');
  await clearResult();

  // IPs: the networks; a too-wide range shows the API's message; a /24 is blocked at the gate.
  await page.click('#nav a[data-view="ips"]');
  await page.locator('#ips-body tr[data-network]').first().waitFor();
  await shot('3-ips');
  await page.fill('#block-ip', '0.0.0.0/0');
  await page.click('#block-form button[type=submit]');
  assert.match(await resultText('error'), /force/);
  await shot('3b-ips-too-wide');
  await clearResult();
  await page.fill('#block-ip', '203.0.113.0/24');
  await page.selectOption('#block-ttl', '3600');
  await page.click('#block-form button[type=submit]');
  assert.match(await resultText('ok'), /Block 203\.0\.113\.0\/24/);
  await expectDenied(await send(`/hls/master.m3u8?token=${token()}`, { ip: '203.0.113.99' }), 403, 'ip_blocked');
  await clearResult();
  // Review: the row of an address inside the /24 offered an Unblock that lifted nothing.
  await page.click('#nav a[data-view="tokens"]');
  await page.click('#nav a[data-view="ips"]');
  const covered = page.locator('#ips-body tr[data-network="203.0.113.20"]');
  await covered.locator('button.unblock', { hasText: 'Unblock 203.0.113.0/24' }).waitFor();
  assert.match(await covered.textContent(), /blocked by 203\.0\.113\.0\/24/);

  // Breakdown: countries, referrers and providers; block a referrer in one click.
  await page.click('#nav a[data-view="breakdown"]');
  const pirate = page.locator('#bd-referrers li[data-name="pirate.test"]');
  await pirate.waitFor();
  for (const country of ['DE', 'US', 'BR', 'FR']) await page.locator(`#bd-countries li[data-name="${country}"]`).waitFor();
  await shot('4-breakdown');
  // Review: the row was named `*.player.example`, and its Block button blocked every
  // subdomain of the real player host.
  const notAHost = page.locator('#bd-referrers li[data-name="(not a host name)"]');
  await notAHost.waitFor();
  assert.equal(await notAHost.locator('button').count(), 0, 'nothing to block');
  assert.equal(await page.locator('#bd-referrers li[data-name="*.player.example"]').count(), 0);
  await pirate.locator('button.block-referrer').click();
  assert.match(await resultText('ok'), /pirate\.test/);
  await pirate.locator('.revoked-badge').waitFor();
  await expectDenied(await send(`/hls/master.m3u8?token=${token()}`, { referer: 'https://pirate.test/other' }), 403, 'referrer_denied');
  assert.equal((await send(`/hls/master.m3u8?token=${token()}`, { referer: 'https://player.example/' })).status, 200);
  await clearResult();

  // Actions log: who did what; undo the revocation and the block, and the gate lets them through.
  await page.click('#nav a[data-view="actions"]');
  const action = (kind, target) => page.locator(`#actions-body tr[data-action="${kind}"]`, { hasText: target });
  await action('revoke', SHARED).waitFor();
  await action('block', '203.0.113.0/24').waitFor();
  await action('block_referrer', 'pirate.test').waitFor();
  await action('expect', SHARED).waitFor();
  assert.match(await action('revoke', SHARED).textContent(), /operator/);
  await shot('5-actions');
  await action('revoke', SHARED).locator('button.undo').click();
  assert.match(await resultText('ok'), /Undo/);
  assert.equal((await send(`/hls/master.m3u8?token=${tokens.shared}`, viewers.fr)).status, 200, 'un-revoked');
  await clearResult();
  await action('block', '203.0.113.0/24').locator('button.undo').click();
  assert.match(await resultText('ok'), /Undo/);
  assert.equal((await send(`/hls/master.m3u8?token=${token()}`, { ip: '203.0.113.99' })).status, 200, 'unblocked');
  await action('revoke', SHARED).locator('button.undo').waitFor({ state: 'detached' });

  // Unknown, missing or mistyped fields do not break the page (the API may shift while the detector is built).
  await page.route('**/admin/tokens?*', (route) => route.fulfill({ contentType: 'application/json', body: JSON.stringify({
    window: 7,
    tokens: [
      { token: 'odd-row', score: 'high?', severity: 'extreme', indicators: 'none', countries: null, providers: [null, { asn: 'x' }, 7], referrers: [{ host: null }, { count: 'many' }], playback_seconds: -1, revoked: 'yes', extra: { nested: [1] } },
      42, null, {}, [],
    ],
  }) }));
  await page.route('**/admin/tokens/detail?*', (route) => route.fulfill({ contentType: 'application/json', body: JSON.stringify({ row: null, claims: 'text', scope: 5, ips: { not: 'a list' }, activity: [{ at: 'soon' }, null, { at: 1, events: 'x' }] }) }));
  await page.click('#nav a[data-view="tokens"]');
  await row('odd-row').locator('button.expander').click();
  await page.locator('#tokens-body tr[data-detail-for="odd-row"] .detail').waitFor();
  assert.equal(await page.locator('#tokens-body tr.row').count(), 1, 'rows without a token id are left out');
  await shot('7-tokens-odd-fields');
  await page.unroute('**/admin/tokens/detail?*');
  await page.unroute('**/admin/tokens?*');

  // A 401 in the middle of a session returns to the sign-in form, with a message.
  await page.route('**/admin/ips?*', (route) => route.fulfill({ status: 401, contentType: 'application/json', body: '{"error":"unauthorized","message":"missing or wrong admin token"}' }));
  await page.click('#nav a[data-view="ips"]');
  await page.locator('#signin').waitFor({ state: 'visible' });
  assert.match(await page.textContent('#signin-message'), /missing or wrong admin token/);
  assert.ok(await page.isHidden('#app'));
  await shot('6-signed-out-401');
  await page.unroute('**/admin/ips?*');

  // The admin token never left as a URL or a cookie; every API call carried it as a header.
  for (const r of requests) assert.ok(!r.url.includes(ADMIN) && !r.url.includes(encodeURIComponent(ADMIN)), r.url);
  const api = requests.filter((r) => /\/admin\/(tokens|ips|breakdown|actions|revoke|block|referrers|expect)/.test(new URL(r.url).pathname));
  assert.ok(api.length >= 8);
  for (const r of api.filter((r) => !r.url.includes('/admin/ips?'))) assert.match(r.authorization ?? '', /^Bearer /, r.url);
  assert.deepEqual(await context.cookies(), []);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'not kept unless asked');

  assert.deepEqual(dialogs, [], 'no script ran from the data');
  assert.deepEqual(await page.evaluate(() => window.__violations), [], 'no CSP violation');
  // Chromium logs every non-2xx fetch as "Failed to load resource"; the 401s and the 400 above are expected.
  assert.deepEqual(consoleErrors.filter((m) => !/Failed to load resource: the server responded with a status of (400|401)/.test(m)), []);
  await context.close();
});

function parseCsp(header) {
  assert.ok(header, 'a Content-Security-Policy header');
  return Object.fromEntries(header.split(';').map((d) => d.trim()).filter(Boolean).map((d) => {
    const [name, ...values] = d.split(/\s+/);
    return [name.toLowerCase(), values.join(' ')];
  }));
}

/** A value for a CSS attribute selector in double quotes. */
function cssString(value) {
  return value.replace(/["\\]/g, '\\$&');
}
