'use strict';
// bfm review screen. Every text from the server goes into the page with textContent (never
// innerHTML): case numbers, names and notes are user input.
(function () {
  const main = document.getElementById('main');
  let session = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids.flat(Infinity)) {
      if (c === null || c === undefined) continue;
      e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v)) ? '—'
    : (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(d === undefined ? 3 : d)) : String(v));
  const badge = (s) => el('span', {class: 'badge ' + s}, s);
  const link = (href, text) => el('a', {href: href}, text);

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({credentials: 'same-origin'}, opts || {}));
    if (r.status === 401) { window.location.assign('/login'); throw new Error('log in first'); }
    let data = null;
    try { data = await r.json(); } catch (e) { data = {error: 'bad answer (' + r.status + ')'}; }
    if (!r.ok) throw new Error(data.error || ('error ' + r.status));
    return data;
  }
  async function post(path, fields) {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(fields || {})) body.set(k, v);
    return api(path, {method: 'POST', body: body, headers: {'X-CSRF-Token': session.csrf}});
  }
  function show(...nodes) { main.replaceChildren(...nodes); }
  function fail(e) { show(el('p', {class: 'msg'}, e.message || String(e))); }

  function table(head, rows) {
    return el('table', {}, el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.length ? rows : [el('tr', {}, el('td', {colspan: head.length, class: 'muted'}, 'none'))]));
  }
  function kv(pairs) {
    return el('dl', {class: 'kv'}, pairs.filter((p) => p[1] !== '' && p[1] !== null && p[1] !== undefined)
      .map(([k, v]) => [el('dt', {}, k), el('dd', {}, v instanceof Node ? v : String(v))]));
  }
  function itemTitle(it) {
    if (!it || it.missing) return 'item ' + (it ? it.id : '?') + ' (missing)';
    if (it.evidence) return 'case ' + it.evidence.case + ', item ' + it.evidence.item;
    if (it.firearm) return 'test-fire of ' + it.firearm.serial;
    return 'item ' + it.id;
  }
  // the firearm's trace fields (what a trace request needs)
  function trace(f) {
    return kv([['serial', f.serial], ['make', f.make], ['manufacturer', f.manufacturer], ['model', f.model],
      ['calibre', f.calibre], ['country', f.country], ['manufactured', f.manufactured],
      ['markings', f.markings], ['test-fired', f.testfire_date], ['test lab', f.test_lab],
      ['exported', [f.export_date, f.export_country].filter(Boolean).join(' to ')],
      ['imported into', f.import_country], ['transit', f.transit], ['consignee', f.consignee]]);
  }
  function itemCard(it, heading) {
    const rows = [['item', link('/item/' + it.id, '#' + it.id)], ['kind', it.kind], ['calibre', it.calibre],
      ['scans', it.nscans], ['searched by run', it.searched || 'not yet']];
    const parts = [el('h2', {}, heading + ': ' + itemTitle(it)), kv(rows)];
    if (it.evidence) {
      const e = it.evidence;
      parts.push(el('h2', {}, 'evidence'), kv([['case', link('/items?case=' + encodeURIComponent(e.case), e.case)],
        ['item', e.item], ['agency', e.agency], ['date', e.date], ['place', e.place], ['lab', e.lab], ['notes', e.notes]]));
    }
    if (it.firearm) parts.push(el('h2', {}, 'firearm (trace)'), trace(it.firearm));
    return el('div', {class: 'card'}, parts);
  }

  async function pageSummary() {
    const s = await api('/api/summary');
    const stat = (n, l, href) => el('div', {class: 'stat'}, el('div', {class: 'n'}, href ? link(href, fmt(n)) : fmt(n)), el('div', {class: 'l'}, l));
    show(el('h1', {}, 'Store ' + s.store),
      el('div', {class: 'grid'},
        stat(s.items, 'items', '/items'), stat(s.cartridge_items, 'cartridge cases', '/items?kind=cartridge'),
        stat(s.bullet_items, 'bullets', '/items?kind=bullet'), stat(s.firearms, 'firearms (test-fire records)'),
        stat(s.evidence, 'evidence items'), stat(s.scans, 'scans'), stat(s.hits, 'hits'),
        stat(s.candidate, 'to review'), stat(s.confirmed, 'confirmed'), stat(s.rejected, 'rejected'),
        stat(s.audit, 'audit entries', '/audit')),
      el('p', {class: 'muted'}, 'Feature kinds: ' + s.feature_kinds.join(', ') + ' · ' + fmt(s.bytes) + ' bytes · last change ' + (s.last_change || '—')));
  }

  async function pageItems() {
    const q = new URLSearchParams(window.location.search);
    const form = el('form', {class: 'filters', method: 'get', action: '/items'},
      el('label', {}, 'case', el('input', {name: 'case', value: q.get('case') || ''})),
      el('label', {}, 'serial', el('input', {name: 'serial', value: q.get('serial') || ''})),
      el('label', {}, 'kind', el('select', {name: 'kind'}, ['', 'cartridge', 'bullet'].map((k) =>
        el('option', {value: k, selected: (q.get('kind') || '') === k}, k || 'any')))),
      el('label', {}, 'calibre', el('input', {name: 'calibre', value: q.get('calibre') || ''})),
      el('button', {type: 'submit', class: 'primary'}, 'Filter'));
    const args = new URLSearchParams();
    for (const k of ['case', 'serial', 'kind', 'calibre', 'offset']) if (q.get(k)) args.set(k, q.get(k));
    const d = await api('/api/items?' + args.toString());
    const rows = d.items.map((it) => el('tr', {},
      el('td', {class: 'num'}, link('/item/' + it.id, '#' + it.id)), el('td', {}, it.kind), el('td', {}, it.calibre),
      el('td', {}, it.owner === 'evidence' ? link('/items?case=' + encodeURIComponent(it.case), it.case) : ''),
      el('td', {}, it.item), el('td', {}, it.owner === 'firearm' ? link('/items?serial=' + encodeURIComponent(it.serial), it.serial) : ''),
      el('td', {}, [it.make, it.model].filter(Boolean).join(' ')), el('td', {class: 'num'}, it.hits),
      el('td', {class: 'num'}, fmt(it.best_score)), el('td', {}, it.confirmed ? badge('confirmed') : '')));
    const pager = el('div', {class: 'pager'}, 'items ' + (d.total ? d.offset + 1 : 0) + '–' + (d.offset + d.items.length) + ' of ' + d.total);
    if (d.offset + d.items.length < d.total) {
      const next = new URLSearchParams(q); next.set('offset', d.offset + d.limit);
      pager.appendChild(link('/items?' + next.toString(), 'next page'));
    }
    show(el('h1', {}, 'Items'), form,
      table(['item', 'kind', 'calibre', 'case', 'evidence item', 'serial', 'make / model', 'hits', 'best score', ''], rows), pager);
  }

  async function pageItem(id) {
    const d = await api('/api/item/' + id);
    const rows = d.candidates.map((c) => {
      const o = c.other, f = o.firearm;
      return el('tr', {class: 'cand'},
        el('td', {class: 'num'}, c.rank), el('td', {}, link('/item/' + o.id, '#' + o.id)), el('td', {}, itemTitle(o)),
        el('td', {class: 'num'}, fmt(c.hit.score)), el('td', {class: 'num'}, fmt(c.hit.log10_lr, 2)),
        el('td', {}, badge(c.hit.status)),
        el('td', {}, f ? [f.make, f.model, f.calibre].filter(Boolean).join(' ') : ''),
        el('td', {}, f ? f.manufactured : ''), el('td', {}, f ? [f.export_country, f.import_country].filter(Boolean).join(' → ') : ''),
        el('td', {}, f ? f.consignee : ''),
        el('td', {}, link('/hit/' + c.hit.id, 'view hit ' + c.hit.id)));
    });
    show(el('h1', {}, 'Item #' + d.item.id + ': ' + itemTitle(d.item)), itemCard(d.item, 'this item'),
      el('h2', {}, 'Ranked candidates (' + d.candidates.length + ')'),
      table(['rank', 'item', 'what', 'score', 'log10 LR', 'status', 'make / model / calibre', 'manufactured', 'export → import', 'consignee', ''], rows));
  }

  function picture(src, alt, legend) {
    const img = el('img', {src: src, alt: alt});
    img.addEventListener('click', () => img.classList.toggle('zoomed'));
    const range = el('input', {type: 'range', min: '25', max: '400', value: '100'});
    range.addEventListener('input', () => { img.classList.add('zoomed'); img.style.width = (img.naturalWidth * range.value / 100) + 'px'; });
    return el('div', {class: 'pic'}, el('div', {class: 'bar'}, 'zoom', range, el('span', {}, 'click the picture: fit / full size')), img,
      el('div', {class: 'legend'}, legend));
  }

  async function pageHit(id) {
    const d = await api('/api/hit/' + id);
    const h = d.hit;
    const status = el('span', {id: 'status'}, badge(h.status));
    const info = kv([['hit', '#' + h.id], ['status', status], ['score', fmt(h.score) + ' (' + d.score_name + ')'],
      ['log10 LR', fmt(h.log10_lr, 2)], ['search run', h.run], ['rank in its search', h.rank],
      ...d.scores_names.map((n, k) => [n, n ? fmt(h.scores[k]) : '']),
      ['examiner', h.examiner], ['reviewed', h.when], ['note', h.note]]);
    const parts = [el('h1', {}, 'Hit #' + h.id + ': ' + itemTitle(d.query) + ' vs ' + itemTitle(d.candidate)),
      el('div', {class: 'card'}, info)];
    if (session.role === 'examiner') {
      const note = el('input', {id: 'note', maxlength: '255', placeholder: 'note for the audit log'});
      const msg = el('span', {class: 'msg', id: 'review-msg'});
      const act = async (decision) => {
        msg.textContent = '';
        try {
          const r = await post('/api/hit/' + id + '/review', {decision: decision, note: note.value});
          status.replaceChildren(badge(r.status));
          msg.className = 'ok'; msg.textContent = r.status + ' by ' + r.examiner;
        } catch (e) { msg.className = 'msg'; msg.textContent = e.message; }
      };
      parts.push(el('div', {class: 'card review'}, el('strong', {}, 'Review'), note,
        el('button', {type: 'button', class: 'confirm', id: 'confirm', onclick: () => act('confirm')}, 'Confirm'),
        el('button', {type: 'button', class: 'reject', id: 'reject', onclick: () => act('reject')}, 'Reject'), msg));
    }
    if (d.kind === 'bullet') {
      parts.push(el('h2', {}, 'Aligned signatures (best phase) and land-score matrix'),
        el('div', {class: 'sides'},
          picture(d.pictures.pair, 'aligned land signatures', 'One band per land pair on the best phase: query (blue) and candidate (red) signatures after alignment.'),
          picture(d.pictures.matrix, 'land-score matrix', 'Rows: lands of the query; columns: lands of the candidate. Darker green = higher land score; red frames = the best phase; hatched = not scored.')));
      const lands = el('div', {class: 'card'}, el('span', {class: 'muted'}, 'land scores loading…'));
      parts.push(lands);
      api(d.pictures.lands).then((m) => {
        const head = ['', ...Array.from({length: m.nb}, (_, j) => 'B' + (j + 1))];
        const rows = m.matrix.map((row, i) => el('tr', {}, el('th', {}, 'A' + (i + 1)), row.map((v) => el('td', {class: 'num'}, fmt(v)))));
        lands.replaceChildren(el('p', {}, 'phase ' + m.phase + ', SAM score ' + fmt(m.score) + ', margin ' + fmt(m.margin)), table(head, rows));
      }).catch((e) => lands.replaceChildren(el('span', {class: 'msg'}, e.message)));
    } else {
      parts.push(el('h2', {}, 'Breech faces after registration'),
        picture(d.pictures.pair, 'query and candidate breech faces', 'Left: the query with its congruent matching cells (green). Right: the candidate rotated by the consensus angle, the cells where they registered.'));
    }
    parts.push(el('div', {class: 'sides'}, itemCard(d.query, 'query'), itemCard(d.candidate, 'candidate')));
    show(...parts);
  }

  // Graphviz's SVG, parsed (never executed) and reduced to drawing elements; nodes become links.
  const SVG_OK = new Set(['svg', 'g', 'title', 'text', 'path', 'polygon', 'polyline', 'ellipse', 'line', 'rect', 'circle']);
  const ATTR_OK = new Set(['width', 'height', 'viewBox', 'transform', 'id', 'class', 'fill', 'stroke', 'stroke-width',
    'stroke-dasharray', 'points', 'd', 'cx', 'cy', 'rx', 'ry', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'text-anchor',
    'font-family', 'font-size', 'font-weight', 'xmlns', 'preserveAspectRatio']);
  function cleanSvg(text) {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const root = doc.documentElement;
    if (!root || root.nodeName !== 'svg') throw new Error('the linkage picture is not SVG');
    for (const e of Array.from(root.querySelectorAll('*')).concat([root])) {
      if (!SVG_OK.has(e.nodeName)) { e.remove(); continue; }
      for (const a of Array.from(e.attributes)) if (!ATTR_OK.has(a.name)) e.removeAttribute(a.name);
    }
    const NS = 'http://www.w3.org/2000/svg';
    for (const g of Array.from(root.querySelectorAll('g.node'))) {
      const t = g.querySelector('text');
      if (!t) continue;
      const m = /^(firearm|case) (.*)$/.exec(t.textContent);
      if (!m) continue;
      const a = doc.createElementNS(NS, 'a');
      a.setAttribute('href', '/items?' + (m[1] === 'firearm' ? 'serial=' : 'case=') + encodeURIComponent(m[2]));
      while (g.firstChild) a.appendChild(g.firstChild);
      g.appendChild(a);
    }
    return document.importNode(root, true);
  }

  async function pageLinks() {
    const q = new URLSearchParams(window.location.search);
    const args = new URLSearchParams();
    if (q.get('confirmed') === '1') args.set('confirmed', '1');
    if (q.get('min_score')) args.set('min_score', q.get('min_score'));
    const form = el('form', {class: 'filters', method: 'get', action: '/links'},
      el('label', {}, 'confirmed hits only', el('select', {name: 'confirmed'},
        el('option', {value: '0'}, 'no'), el('option', {value: '1', selected: q.get('confirmed') === '1'}, 'yes'))),
      el('label', {}, 'minimum score', el('input', {name: 'min_score', value: q.get('min_score') || ''})),
      el('button', {type: 'submit', class: 'primary'}, 'Draw'));
    const d = await api('/api/links?' + args.toString());
    const graph = el('div', {class: 'graph', id: 'graph'}, el('span', {class: 'muted'}, 'drawing…'));
    const rows = d.edges.map((e) => {
      const a = d.nodes[e.a], b = d.nodes[e.b];
      const ref = (n) => link('/items?' + (n.type === 'firearm' ? 'serial=' : 'case=') + encodeURIComponent(n.name), n.type + ' ' + n.name);
      return el('tr', {}, el('td', {class: 'num'}, a.series), el('td', {}, ref(a)), el('td', {}, ref(b)),
        el('td', {class: 'num'}, fmt(e.score)), el('td', {class: 'num'}, e.hits), el('td', {}, e.confirmed ? badge('confirmed') : badge('candidate')),
        el('td', {}, link('/hit/' + e.hit, 'best hit ' + e.hit)));
    });
    show(el('h1', {}, 'Crime linkage: ' + d.series + ' linked series'), form, graph,
      el('h2', {}, 'Links'), table(['series', 'from', 'to', 'best score', 'hits', '', ''], rows));
    const r = await fetch('/api/links.svg?' + args.toString(), {credentials: 'same-origin'});
    if (!r.ok) { graph.replaceChildren(el('span', {class: 'msg'}, 'the picture could not be drawn (' + r.status + ')')); return; }
    try { graph.replaceChildren(cleanSvg(await r.text())); } catch (e) { graph.replaceChildren(el('span', {class: 'msg'}, e.message)); }
  }

  async function pageAudit() {
    const q = new URLSearchParams(window.location.search);
    const args = new URLSearchParams();
    for (const k of ['offset', 'user', 'action']) if (q.get(k)) args.set(k, q.get(k));
    const d = await api('/api/audit?' + args.toString());
    const rows = d.entries.map((a) => el('tr', {}, el('td', {class: 'num'}, a.seq), el('td', {}, a.time),
      el('td', {}, a.user), el('td', {}, a.action), el('td', {}, a.what)));
    const pager = el('div', {class: 'pager'}, 'entries ' + (d.total ? d.offset + 1 : 0) + '–' + (d.offset + d.entries.length) + ' of ' + d.total + ', newest first');
    if (d.offset + d.entries.length < d.total) {
      const next = new URLSearchParams(q); next.set('offset', d.offset + d.limit);
      pager.appendChild(link('/audit?' + next.toString(), 'older'));
    }
    show(el('h1', {}, 'Audit log'), table(['#', 'time', 'user', 'action', 'what'], rows), pager);
  }

  async function route() {
    const p = window.location.pathname;
    let m;
    if (p === '/') return pageSummary();
    if (p === '/items') return pageItems();
    if ((m = /^\/item\/(\d+)$/.exec(p))) return pageItem(m[1]);
    if ((m = /^\/hit\/(\d+)$/.exec(p))) return pageHit(m[1]);
    if (p === '/links') return pageLinks();
    if (p === '/audit') return pageAudit();
    show(el('p', {}, 'No such page.'));
  }

  document.getElementById('logout').addEventListener('click', async () => {
    try { await post('/api/logout', {}); } catch (e) { /* gone anyway */ }
    window.location.assign('/login');
  });
  (async () => {
    try {
      session = await api('/api/session');
      document.getElementById('who').textContent = session.user + ' (' + session.role + ')';
      await route();
    } catch (e) { fail(e); }
  })();
})();
