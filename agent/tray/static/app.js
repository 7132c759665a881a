// The Get help page of the Deskside tray. Served by the tray on loopback;
// no inline script (CSP), every call same-origin with the tray's cookie.
'use strict';
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const init = body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  const res = await fetch(path, init);
  if (path === '/api/screenshot' && res.ok) return res.blob();
  const data = await res.json().catch(() => ({ error: 'The tray answered ' + res.status + '; reopen Get help from the tray icon.' }));
  if (!res.ok) throw new Error(data.error || ('error ' + res.status));
  return data;
}

function showError(el, err) { el.textContent = err ? String(err.message || err) : ''; el.hidden = !err; }

// ---- views ----
function route() {
  const requests = location.hash === '#requests';
  const consent = location.hash === '#consent' || !!(state && state.consentId);
  $('view-consent').hidden = !consent;
  $('view-help').hidden = requests || consent;
  $('view-requests').hidden = !requests || consent;
  $('nav-help').classList.toggle('active', !requests && !consent);
  $('nav-requests').classList.toggle('active', requests && !consent);
  if (requests) { unread = 0; badge(); loadRequests(); }
}
window.addEventListener('hashchange', route);

// ---- state ----
let state = null;
function setState(s) {
  const before = state;
  state = s;
  showConsent(before);
  const c = $('conn');
  c.className = 'conn ' + (s.connected ? 'ok' : 'off');
  c.textContent = !s.reachable ? 'Agent not reachable' : s.connected ? 'Connected to your IT team' : 'Offline';
  const note = $('agent-note');
  note.hidden = s.reachable;
  if (!s.reachable) note.textContent = 'The Deskside agent on this computer cannot be reached, so nothing can be sent from here right now. Please contact your IT team by phone or mail.';
  $('session').hidden = !s.session;
  if (s.session) $('session-text').textContent = (s.technician || 'A technician') + ' is ' + (s.control ? 'controlling' : 'viewing') + ' your screen';
}
$('end-session').addEventListener('click', async () => {
  try { await api('/api/end-session', {}); $('session').hidden = true; } catch (e) { alert(e.message); }
});

// ---- consent ----
// The question the view shows (its id), so that its closing shows why,
// and an answer never goes to a question that replaced it.
let shownQuestion = '', countdown = 0;
function showConsent(before) {
  const s = state;
  if (s.consentId) {
    const fresh = s.consentId !== shownQuestion;
    shownQuestion = s.consentId;
    $('consent-open').hidden = false; $('consent-closed').hidden = true;
    $('consent-text').textContent = s.consentText;
    $('consent-ticket-line').hidden = !s.consentTicket;
    $('consent-ticket').textContent = s.consentTicket;
    if (fresh) {
      $('consent-allow').disabled = false; $('consent-deny').disabled = false;
      showError($('consent-error'), null);
      if (location.hash !== '#consent') location.hash = '#consent';
      route();
      // Deny is the default: Return or Space on the page denies.
      $('consent-deny').focus();
    }
    tick();
    clearInterval(countdown);
    countdown = setInterval(tick, 250);
    return;
  }
  clearInterval(countdown);
  $('consent-open').hidden = true;
  const closed = shownQuestion && s.closedId === shownQuestion;
  $('consent-closed').hidden = false;
  $('consent-closed-reason').textContent = closed ? s.closedReason : 'No request to see your screen is waiting for your answer.';
  if (before && before.consentId) route();
}
function tick() {
  const left = Math.max(0, Math.ceil((state.consentDeadline - Date.now()) / 1000));
  $('consent-left').textContent = left > 0 ? 'No answer in ' + left + ' s denies.' : 'No answer: denied.';
  if (left === 0) { $('consent-allow').disabled = true; }
}
async function answer(a) {
  const id = shownQuestion;
  $('consent-allow').disabled = true; $('consent-deny').disabled = true;
  try { await api('/api/consent', { id, answer: a }); }
  catch (e) { showError($('consent-error'), e); $('consent-allow').disabled = false; $('consent-deny').disabled = false; }
}
$('consent-allow').addEventListener('click', () => answer('allow'));
$('consent-deny').addEventListener('click', () => answer('deny'));

// ---- knowledge-base suggestions ----
let searchTimer = 0, searchSeq = 0;
function suggest() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const q = ($('description').value + ' ' + $('category').selectedOptions[0].text.replace(/…$/, '')).trim();
    const seq = ++searchSeq;
    if ($('description').value.trim().length < 3) { $('suggestions').hidden = true; return; }
    try {
      const r = await api('/api/search', { query: $('description').value.trim() });
      if (seq !== searchSeq) return;
      renderArticles(r.articles || []);
    } catch (e) { $('suggestions').hidden = true; }
  }, 350);
}
function renderArticles(list) {
  const ul = $('articles');
  ul.replaceChildren();
  for (const a of list) {
    const li = $('tpl-article').content.firstElementChild.cloneNode(true);
    li.querySelector('.title').textContent = a.title;
    li.querySelector('.snippet').textContent = a.snippet.replace(/[*_`#]+/g, '');
    // The relay renders articles to HTML it made safe; the CSP blocks any script anyway.
    li.querySelector('.article-body').innerHTML = a.html;
    li.querySelector('button.solved').addEventListener('click', async (ev) => {
      ev.target.disabled = true;
      try { await api('/api/helped', { id: String(a.id) }); $('help-form').hidden = true; $('solved').hidden = false; }
      catch (e) { ev.target.disabled = false; showError($('help-error'), e); }
    });
    ul.append(li);
  }
  $('suggestions').hidden = list.length === 0;
}
$('description').addEventListener('input', suggest);
$('category').addEventListener('change', suggest);

// ---- screenshot with blurring ----
const canvas = $('shot');
const ctx = canvas.getContext('2d', { willReadFrequently: true });
let original = null; // ImageData before any blurring
let drag = null;

$('take-shot').addEventListener('click', async () => {
  showError($('help-error'), null);
  $('take-shot').disabled = true;
  try {
    const blob = await api('/api/screenshot', {});
    const img = await createImageBitmap(blob);
    canvas.width = img.width; canvas.height = img.height;
    ctx.drawImage(img, 0, 0);
    original = ctx.getImageData(0, 0, canvas.width, canvas.height);
    $('shot-wrap').hidden = false; $('drop-shot').hidden = false; $('undo-blur').hidden = true;
    $('take-shot').textContent = 'Take it again';
  } catch (e) { showError($('help-error'), e); }
  $('take-shot').disabled = false;
});
$('drop-shot').addEventListener('click', () => {
  original = null; $('shot-wrap').hidden = true; $('drop-shot').hidden = true; $('undo-blur').hidden = true;
  $('take-shot').textContent = 'Take a screenshot';
});
$('undo-blur').addEventListener('click', () => { if (original) ctx.putImageData(original, 0, 0); $('undo-blur').hidden = true; });

function toImage(ev) {
  const r = canvas.getBoundingClientRect();
  return { x: Math.round((ev.clientX - r.left) * canvas.width / r.width), y: Math.round((ev.clientY - r.top) * canvas.height / r.height) };
}
canvas.addEventListener('pointerdown', (ev) => { if (!original) return; drag = { a: toImage(ev), shown: ctx.getImageData(0, 0, canvas.width, canvas.height) }; });
canvas.addEventListener('pointermove', (ev) => {
  if (!drag) return;
  const b = toImage(ev);
  ctx.putImageData(drag.shown, 0, 0);
  ctx.save(); ctx.strokeStyle = '#2563eb'; ctx.lineWidth = Math.max(2, canvas.width / 400); ctx.setLineDash([8, 6]);
  ctx.strokeRect(drag.a.x, drag.a.y, b.x - drag.a.x, b.y - drag.a.y); ctx.restore();
});
canvas.addEventListener('pointerup', (ev) => {
  if (!drag) return;
  const b = toImage(ev);
  ctx.putImageData(drag.shown, 0, 0);
  const x = Math.max(0, Math.min(drag.a.x, b.x)), y = Math.max(0, Math.min(drag.a.y, b.y));
  const w = Math.min(canvas.width, Math.max(drag.a.x, b.x)) - x, h = Math.min(canvas.height, Math.max(drag.a.y, b.y)) - y;
  drag = null;
  if (w < 4 || h < 4) return;
  blurRegion(x, y, w, h);
  $('undo-blur').hidden = false;
});

// blurRegion blurs a rectangle of the canvas beyond reading: three box
// blur passes each way (close to a Gaussian), done on the pixels so what
// is sent is exactly what the user sees.
function blurRegion(x, y, w, h) {
  const img = ctx.getImageData(x, y, w, h);
  const r = Math.max(6, Math.round(Math.min(canvas.width, canvas.height) / 60));
  for (let pass = 0; pass < 3; pass++) { boxBlur(img.data, w, h, r, true); boxBlur(img.data, w, h, r, false); }
  ctx.putImageData(img, x, y);
}
function boxBlur(d, w, h, r, horizontal) {
  const n = horizontal ? w : h, lines = horizontal ? h : w;
  const buf = new Float32Array(n * 3);
  for (let l = 0; l < lines; l++) {
    const at = (i) => 4 * (horizontal ? l * w + i : i * w + l);
    for (let i = 0; i < n; i++) { const p = at(i); buf[3 * i] = d[p]; buf[3 * i + 1] = d[p + 1]; buf[3 * i + 2] = d[p + 2]; }
    for (let c = 0; c < 3; c++) {
      let sum = 0, count = 0;
      for (let i = 0; i <= Math.min(r, n - 1); i++) { sum += buf[3 * i + c]; count++; }
      for (let i = 0; i < n; i++) {
        d[at(i) + c] = sum / count;
        const add = i + r + 1, drop = i - r;
        if (add < n) { sum += buf[3 * add + c]; count++; }
        if (drop >= 0) { sum -= buf[3 * drop + c]; count--; }
      }
    }
  }
}

function screenshotBase64() {
  if (!original) return Promise.resolve('');
  return new Promise((resolve, reject) => canvas.toBlob((blob) => {
    if (!blob) { reject(new Error('The screenshot could not be prepared; remove it and try again.')); return; }
    const fr = new FileReader();
    fr.onload = () => resolve(String(fr.result).replace(/^data:image\/png;base64,/, ''));
    fr.onerror = () => reject(fr.error);
    fr.readAsDataURL(blob);
  }, 'image/png'));
}

// ---- send ----
$('help-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError($('help-error'), null);
  $('send').disabled = true; $('send').textContent = 'Sending…';
  try {
    const r = await api('/api/file', {
      category: $('category').value, description: $('description').value,
      email: $('email').value, screenshot: await screenshotBase64(),
    });
    $('code').textContent = r.code;
    $('help-form').hidden = true; $('filed').hidden = false;
  } catch (e) { showError($('help-error'), e); }
  $('send').disabled = false; $('send').textContent = 'Send to IT';
});
$('copy').addEventListener('click', async () => {
  try { await navigator.clipboard.writeText($('code').textContent); $('copy').textContent = 'Copied'; }
  catch (e) { getSelection().selectAllChildren($('code')); $('copy').textContent = 'Press Ctrl+C to copy'; }
});

// ---- my requests ----
const requests = new Map(); // code → MyRequest
let unread = 0;
function badge() { $('unread').textContent = String(unread); $('unread').hidden = unread === 0; }

async function loadRequests() {
  try {
    const r = await api('/api/requests');
    requests.clear();
    for (const q of r.requests || []) requests.set(q.code, q);
    showError($('req-error'), null);
    renderRequests();
  } catch (e) { showError($('req-error'), e); }
}
function renderRequests(fresh) {
  const ul = $('requests');
  // Keep what the user was typing, and where, across the re-render.
  const open = new Map([...ul.querySelectorAll('li.request')].map((li) =>
    [li.dataset.code, { reply: li.querySelector('textarea').value, chat: li.querySelector('.chat-form input').value }]));
  const act = document.activeElement;
  const focus = act && act.closest && act.closest('li.request') ? [act.closest('li.request').dataset.code, act.tagName] : null;
  ul.replaceChildren();
  const list = [...requests.values()].sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
  $('req-empty').hidden = list.length > 0;
  for (const q of list) {
    const li = renderRequest(q, open.get(q.code) || { reply: '', chat: '' }, fresh);
    ul.append(li);
    if (focus && focus[0] === q.code) (focus[1] === 'INPUT' ? li.querySelector('.chat-form input') : li.querySelector('textarea')).focus();
  }
}
function entryLine(e) {
  const el = document.createElement('li');
  el.className = e.fromUser ? 'user' : 'tech';
  const who = document.createElement('span'); who.className = 'who';
  who.textContent = e.fromUser ? 'You' : (e.technician || 'IT');
  el.append(who, document.createTextNode(e.text));
  return el;
}
function renderRequest(q, draft, fresh) {
  const li = $('tpl-request').content.firstElementChild.cloneNode(true);
  li.dataset.code = q.code;
  li.querySelector('.req-code').textContent = q.code;
  li.querySelector('.req-subject').textContent = q.subject;
  const st = li.querySelector('.status');
  st.textContent = q.status; st.classList.add(q.status.split(' ')[0]);
  if (q.pickedUp) {
    const p = li.querySelector('.picked');
    p.hidden = false;
    const answered = (q.entries || []).filter((e) => !e.fromUser && e.technician).pop();
    p.textContent = (q.technician || (answered && answered.technician) || 'A technician') + ' picked it up';
  }
  // Replies and status changes on the thread; chat lines, oldest first,
  // in the chat box.
  const ol = li.querySelector('.entries'), chat = li.querySelector('.chat-lines');
  for (const e of q.entries || []) {
    if (e.kind === 'created') continue;
    let el;
    if (e.kind === 'status') { el = document.createElement('li'); el.className = 'status-line'; el.textContent = 'Status: ' + e.text; }
    else { el = entryLine(e); el.dataset.testid = e.kind === 'chat' ? 'chat-line' : 'entry'; }
    if (fresh && fresh.code === q.code && fresh.entryId === e.id) el.classList.add('fresh');
    (e.kind === 'chat' ? chat : ol).append(el);
  }
  li.querySelector('.chat-empty').hidden = chat.children.length > 0;
  const send = (form, field, chatLine) => {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!field.value.trim()) return;
      const btn = form.querySelector('button');
      btn.disabled = true;
      try {
        const r = await api('/api/reply', { code: q.code, text: field.value, chat: chatLine });
        field.value = ''; requests.set(r.code, r); showError($('req-error'), null); renderRequests();
      } catch (e) { showError($('req-error'), e); } finally { btn.disabled = false; }
    });
  };
  const form = li.querySelector('form.reply'), ta = form.querySelector('textarea');
  ta.value = draft.reply;
  send(form, ta, false);
  const cform = li.querySelector('form.chat-form'), cin = cform.querySelector('input');
  cin.value = draft.chat;
  send(cform, cin, true);
  requestAnimationFrame(() => { chat.scrollTop = chat.scrollHeight; });
  return li;
}

// ---- live updates ----
function listen() {
  const es = new EventSource('/api/events');
  es.addEventListener('state', (ev) => setState(JSON.parse(ev.data)));
  es.addEventListener('request', (ev) => {
    const q = JSON.parse(ev.data);
    const last = (q.entries || [])[q.entries.length - 1];
    requests.set(q.code, q);
    if ($('view-requests').hidden) { unread++; badge(); } else renderRequests({ code: q.code, entryId: last && last.id });
  });
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) setTimeout(listen, 2000); };
}

api('/api/state').then(setState).catch(() => {});
listen();
route();
