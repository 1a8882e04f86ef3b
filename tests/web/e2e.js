'use strict';
// End-to-end test of bfm serve in Debian's Chromium (headless), driven by playwright-core:
// log in (after a refused wrong password), open an item, see its ranked candidates, open a
// hit and see its pictures, confirm it, find it confirmed in `bfm hits` and in the audit log,
// see a POST without the CSRF token refused, log out.
// Environment: BFM_URL (server), BFM_EXE (bfm binary), BFM_STORE, BFM_USER, BFM_PASSWORD,
// BFM_SHOTS (folder for screenshots, optional), CHROMIUM (default /usr/bin/chromium).
const {chromium} = require('playwright-core');
const {execFileSync} = require('child_process');
const path = require('path');

const url = process.env.BFM_URL, bfm = process.env.BFM_EXE, store = process.env.BFM_STORE;
const user = process.env.BFM_USER, password = process.env.BFM_PASSWORD;
const shots = process.env.BFM_SHOTS;
let failed = 0, passed = 0;
function check(cond, what) {
  if (cond) { passed++; return; }
  failed++;
  console.error('CHECK failed: ' + what);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage({viewport: {width: 1400, height: 1000}});
  const shot = async (name) => { if (shots) await page.screenshot({path: path.join(shots, name + '.png'), fullPage: true}); };
  page.setDefaultTimeout(60000);
  try {
    // a page without a session sends to the login page
    await page.goto(url + '/items');
    check(page.url().endsWith('/login'), 'no session: redirected to /login (got ' + page.url() + ')');

    // wrong password refused
    await page.fill('#user', user);
    await page.fill('#password', 'not-the-password');
    await page.click('#go');
    await page.waitForFunction(() => document.getElementById('msg').textContent.length > 0);
    const msg = await page.textContent('#msg');
    check(/wrong user name or password/.test(msg), 'wrong password refused: ' + msg);
    check(page.url().endsWith('/login'), 'still on the login page');
    await shot('1-login-refused');

    // log in
    await page.fill('#password', password);
    await Promise.all([page.waitForURL(url + '/'), page.click('#go')]);
    await page.waitForSelector('.stat');
    check((await page.textContent('#who')).includes(user), 'logged in as ' + user);
    await shot('2-summary');

    // the items list, then one item with candidates
    await page.goto(url + '/items?kind=cartridge');
    await page.waitForSelector('table tbody tr td a');
    const itemLinks = await page.$$eval('table tbody tr', (rows) => rows
      .filter((r) => Number(r.children[7].textContent) > 0).map((r) => r.querySelector('a').getAttribute('href')));
    check(itemLinks.length > 0, 'items with hits listed');
    await Promise.all([page.waitForURL('**' + itemLinks[0]), page.click('a[href="' + itemLinks[0] + '"]')]);
    await page.waitForSelector('tr.cand');
    const ncand = await page.$$eval('tr.cand', (r) => r.length);
    check(ncand >= 1, 'ranked candidates shown: ' + ncand);
    const firstRank = await page.textContent('tr.cand td');
    check(firstRank.trim() === '1', 'first candidate has rank 1');
    await shot('3-item');

    // open the best candidate's hit: both surfaces drawn
    const hitHref = await page.getAttribute('tr.cand a[href^="/hit/"]', 'href');
    const hitId = Number(hitHref.split('/').pop());
    await Promise.all([page.waitForURL('**' + hitHref), page.click('tr.cand a[href^="/hit/"]')]);
    await page.waitForSelector('.pic img');
    await page.waitForFunction(() => Array.from(document.querySelectorAll('.pic img')).every((i) => i.complete && i.naturalWidth > 0), null, {timeout: 120000});
    const widths = await page.$$eval('.pic img', (imgs) => imgs.map((i) => [i.naturalWidth, i.naturalHeight]));
    check(widths.length >= 1 && widths.every(([w, h]) => w > 0 && h > 0), 'hit pictures loaded: ' + JSON.stringify(widths));
    // the cartridge picture holds both surfaces side by side: wider than tall
    check(widths[0][0] > widths[0][1], 'side-by-side picture is wider than tall');
    await shot('4-hit');

    // a POST without the CSRF token is refused (from inside the logged-in page)
    const noCsrf = await page.evaluate(async (id) => {
      const r = await fetch('/api/hit/' + id + '/review', {method: 'POST', credentials: 'same-origin',
        body: new URLSearchParams({decision: 'reject', note: 'forged'})});
      return r.status;
    }, hitId);
    check(noCsrf === 403, 'POST without CSRF token refused: ' + noCsrf);

    // confirm it
    await page.fill('#note', 'same firearm <b>e2e</b>');
    await page.click('#confirm');
    await page.waitForFunction(() => /confirmed/.test(document.getElementById('review-msg').textContent));
    check((await page.textContent('#status')).includes('confirmed'), 'status shows confirmed');
    await shot('5-confirmed');

    // bfm hits sees it
    const hits = JSON.parse(execFileSync(bfm, ['hits', store, '--format', 'json', '--both']).toString());
    const rows = Array.isArray(hits) ? hits : (hits.hits || []);
    const h = rows.find((x) => Number(x.hit !== undefined ? x.hit : x.id) === hitId);
    check(h && h.status === 'confirmed' && h.examiner === user, 'bfm hits shows hit ' + hitId + ' confirmed by ' + user + ': ' + JSON.stringify(h));

    // the audit log shows it, under the examiner
    await page.goto(url + '/audit');
    await page.waitForSelector('table tbody tr');
    const first = await page.$$eval('table tbody tr:first-child td', (tds) => tds.map((t) => t.textContent));
    check(first[2] === user && /confirmed/.test(first[4]) && first[4].includes('<b>e2e</b>'), 'audit log: ' + JSON.stringify(first));
    check((await page.$$('main b')).length === 0, 'the note is shown as text, not markup');
    await shot('6-audit');

    // the linkage graph
    await page.goto(url + '/links');
    await page.waitForSelector('#graph svg', {timeout: 60000});
    const nodeLinks = await page.$$eval('#graph svg a', (as) => as.length);
    check(nodeLinks > 0, 'linkage graph nodes are links: ' + nodeLinks);
    await shot('7-links');

    // log out
    await Promise.all([page.waitForURL('**/login'), page.click('#logout')]);
    const after = await page.evaluate(async () => (await fetch('/api/summary', {credentials: 'same-origin'})).status);
    check(after === 401, 'after logout the API says 401: ' + after);
  } catch (e) {
    failed++;
    console.error('e2e error: ' + (e && e.stack || e));
    await shot('error').catch(() => {});
  } finally {
    await browser.close();
  }
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
})();
