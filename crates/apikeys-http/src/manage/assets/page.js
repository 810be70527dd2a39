// The API Access Keys page (docs/management.md). Plain script, no build
// step, nothing from another host. Every call goes to this page's own
// management API, which decides it; the buttons shown follow GET /me (what
// the keyring says the logged-in user may do). A new key is shown once, in
// the key dialog, and wiped from the page when the dialog closes: it is
// never put in localStorage, sessionStorage, a cookie or the URL.
'use strict';
(function () {
  const base = document.documentElement.dataset.base || '';
  const $ = (id) => document.getElementById(id);
  let me = null;
  let auditCursor = null;
  const CHANGES = 'create,disable,enable,delete,rotate,end_rotation,set_account,set_user_role,remove_user';

  // -- calls ---------------------------------------------------------------
  async function api(method, path, body) {
    const init = {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { accept: 'application/json' },
    };
    if (method !== 'GET') {
      // The API refuses state-changing calls without a JSON content type.
      init.headers['content-type'] = 'application/json';
      init.body = body === undefined ? '{}' : JSON.stringify(body);
    }
    const res = await fetch(base + path, init);
    if (res.status === 204) return null;
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (!res.ok) {
      const msg = data && data.error && data.error.message ? data.error.message : 'the request failed (' + res.status + ')';
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  const may = (kind, action) => !!(me && me.may.keys[kind] && me.may.keys[kind].includes(action));

  // -- small DOM helpers (text only: nothing from the API becomes markup) ----
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function when(iso) {
    if (!iso) return el('span', { class: 'muted' }, 'Never');
    const d = new Date(iso);
    return el('time', { datetime: iso, title: iso }, d.toLocaleString());
  }
  function say(text) { $('status').textContent = text; }
  function fail(err) {
    const f = $('failure');
    f.textContent = err.message || String(err);
    f.hidden = false;
  }
  function clearFailure() { $('failure').hidden = true; $('failure').textContent = ''; }
  function button(label, ariaLabel, cls, handler, data) {
    return el('button', { type: 'button', class: cls, 'aria-label': ariaLabel, 'data-action': data, on: { click: handler } }, label);
  }

  // -- dialogs: native modal dialogs (the rest of the page is inert), a
  // focus trap for Tab and Shift+Tab, Escape closes, focus goes back. -----
  const openers = new WeakMap();
  function focusables(d) {
    return [...d.querySelectorAll('button, input, select, textarea, [href], [tabindex]:not([tabindex="-1"])')]
      .filter((x) => !x.disabled && !x.closest('[hidden]') && x.offsetParent !== null);
  }
  function openDialog(d, first) {
    openers.set(d, document.activeElement);
    d.showModal();
    (first || focusables(d)[0]).focus();
  }
  for (const d of document.querySelectorAll('dialog')) {
    d.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Tab') return;
      const f = focusables(d);
      if (!f.length) return;
      const i = f.indexOf(document.activeElement);
      if (ev.shiftKey && i <= 0) { ev.preventDefault(); f[f.length - 1].focus(); }
      else if (!ev.shiftKey && i === f.length - 1) { ev.preventDefault(); f[0].focus(); }
    });
    d.addEventListener('close', () => {
      const back = openers.get(d);
      if (back && document.contains(back)) back.focus();
    });
    for (const c of d.querySelectorAll('[data-close]')) c.addEventListener('click', () => d.close());
  }

  // The key dialog: the key lives in its input while it is open, nowhere else.
  const keyDialog = $('key-dialog');
  function showKey(token, rotatedNote) {
    const input = $('key-value');
    input.value = token;
    $('key-copied').textContent = '';
    const r = $('key-rotated');
    r.hidden = !rotatedNote;
    r.textContent = rotatedNote || '';
    openDialog(keyDialog, input);
    input.select();
  }
  function wipeKey() {
    $('key-value').value = '';
    $('key-copied').textContent = '';
  }
  // Escape fires 'cancel' at once; 'close' comes a task later: wipe on both.
  keyDialog.addEventListener('cancel', wipeKey);
  keyDialog.addEventListener('close', () => {
    wipeKey();
    refresh();
  });
  $('key-copy').addEventListener('click', async () => {
    const input = $('key-value');
    try {
      await navigator.clipboard.writeText(input.value);
    } catch (_) {
      input.select();
      document.execCommand('copy');
    }
    $('key-copied').textContent = 'Copied to the clipboard.';
  });

  // Confirmation: resolves true on Confirm, false on Cancel or Escape.
  function confirmAction(title, text, yes) {
    const d = $('confirm-dialog');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-yes').textContent = yes;
    return new Promise((resolve) => {
      const onYes = () => { cleanup(); d.close(); resolve(true); };
      const onClose = () => { cleanup(); resolve(false); };
      function cleanup() {
        $('confirm-yes').removeEventListener('click', onYes);
        d.removeEventListener('close', onClose);
      }
      $('confirm-yes').addEventListener('click', onYes);
      d.addEventListener('close', onClose);
      openDialog(d, d.querySelector('[data-close]'));
    });
  }

  // -- creating -----------------------------------------------------------
  let creating = 'general';
  function openCreate(kind) {
    creating = kind;
    $('create-title').textContent = kind === 'general' ? 'Create New API Key' : 'Create API User Token';
    $('create-readonly-row').hidden = kind !== 'general';
    $('create-description').value = '';
    $('create-readonly').checked = false;
    $('create-error').hidden = true;
    openDialog($('create-dialog'), $('create-description'));
  }
  $('create-general').addEventListener('click', () => openCreate('general'));
  $('create-token').addEventListener('click', () => openCreate('user_token'));
  $('create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const description = $('create-description').value.trim();
    const error = $('create-error');
    if (!description) {
      error.textContent = 'Enter a description.';
      error.hidden = false;
      $('create-description').focus();
      return;
    }
    $('create-submit').disabled = true;
    try {
      const made = kindCreate(creating, description, $('create-readonly').checked);
      const data = await made;
      $('create-dialog').close();
      const token = data.api_key.token;
      delete data.api_key.token;
      say(creating === 'general' ? 'Key created.' : 'User token created.');
      showKey(token);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      $('create-submit').disabled = false;
    }
  });
  function kindCreate(kind, description, readOnly) {
    if (kind === 'general') {
      return api('POST', '/api_keys', { api_key: { type: 'general', description, read_only: readOnly } });
    }
    return api('POST', '/users/me/tokens', { api_key: { description } });
  }

  // -- rotating -----------------------------------------------------------
  let rotating = null;
  function openRotate(key) {
    rotating = key;
    $('rotate-title').textContent = 'Rotate “' + key.description + '”';
    $('rotate-error').hidden = true;
    openDialog($('rotate-dialog'), $('rotate-grace'));
  }
  $('rotate-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = rotating;
    try {
      const data = await api('POST', '/api_keys/' + key.id + '/rotate', { rotation: { grace_seconds: Number($('rotate-grace').value) } });
      $('rotate-dialog').close();
      const token = data.api_key.token;
      delete data.api_key.token;
      const until = data.rotated && data.rotated.rotation && data.rotated.rotation.overlap_until;
      say('Key rotated.');
      showKey(token, until ? 'The old key keeps working until ' + new Date(until).toLocaleString() + ' at the latest.' : null);
    } catch (err) {
      $('rotate-error').textContent = err.message;
      $('rotate-error').hidden = false;
    }
  });

  // -- row actions ----------------------------------------------------------
  async function act(key, action) {
    clearFailure();
    const name = '“' + key.description + '”';
    try {
      if (action === 'disable') {
        if (!await confirmAction('Disable API key?', 'Disable ' + name + '? It stops working at once; you can enable it again later.', 'Disable')) return;
        await api('POST', '/api_keys/' + key.id + '/disable');
        say('Key ' + name + ' disabled.');
      } else if (action === 'enable') {
        await api('POST', '/api_keys/' + key.id + '/enable');
        say('Key ' + name + ' enabled.');
      } else if (action === 'end_rotation') {
        if (!await confirmAction('End the rotation?', 'The old key ' + name + ' stops working now; its replacement keeps working.', 'End rotation')) return;
        await api('POST', '/api_keys/' + key.id + '/end_rotation');
        say('Rotation ended: the old key no longer works.');
      } else if (action === 'remove') {
        if (!await confirmAction('Remove API key?', 'Remove ' + name + '? This cannot be undone: the key stops working and cannot be recovered.', 'Remove')) return;
        const path = key.type === 'user_token' ? '/users/me/tokens/' + key.id : '/api_keys/' + key.id;
        await api('DELETE', path);
        say('Key ' + name + ' removed.');
      }
    } catch (err) {
      fail(err);
    }
    refresh();
  }

  function rotationCell(key) {
    const r = key.rotation;
    if (!r) return el('span', { class: 'muted' }, '—');
    const parts = [];
    if (r.rotated_to) {
      if (r.works) {
        parts.push(el('span', { class: 'tag rot' }, 'Rotating'), ' replaced by ', el('code', {}, r.rotated_to),
          '; works until ', when(r.overlap_until), r.successor_used_at ? ' (or sooner: the new key is in use)' : '');
      } else {
        parts.push('Replaced by ', el('code', {}, r.rotated_to), ' (no longer works)');
      }
    }
    if (r.rotated_from) {
      if (parts.length) parts.push(el('br'));
      parts.push('Replaces ', el('code', {}, r.rotated_from));
    }
    return el('span', {}, ...parts);
  }

  function actionsFor(key, kind) {
    const cell = el('td', { class: 'actions-cell' });
    const label = (verb) => verb + ' ' + key.description;
    if (kind === 'general') {
      if (!key.disabled && may('general', 'disable')) cell.append(button('Disable', label('Disable'), '', () => act(key, 'disable'), 'disable'));
      if (key.disabled && may('general', 'enable')) cell.append(button('Enable', label('Enable'), '', () => act(key, 'enable'), 'enable'));
    }
    const rotatable = !key.rotation || !key.rotation.rotated_to;
    if (rotatable && may(kind, 'rotate') && !key.expired) cell.append(button('Rotate', label('Rotate'), '', () => openRotate(key), 'rotate'));
    if (key.rotation && key.rotation.rotated_to && key.rotation.works && may(kind, 'rotate')) {
      cell.append(button('End rotation', label('End the rotation of'), '', () => act(key, 'end_rotation'), 'end_rotation'));
    }
    if (may(kind, 'delete')) cell.append(button('Remove', label('Remove'), 'danger', () => act(key, 'remove'), 'remove'));
    return cell;
  }

  function generalRow(key) {
    const disabled = key.disabled
      ? el('span', {}, el('span', { class: 'tag off' }, 'Disabled'), ' by ', el('span', { class: 'by' }, key.disabled_by), ' on ', when(key.disabled_at))
      : 'No';
    return el('tr', { 'data-key-id': key.id, class: key.disabled ? 'is-disabled' : '' },
      el('td', {}, el('span', { class: 'desc' }, key.description), ' ', el('code', { class: 'hint', title: 'The key ends with these characters' }, '…' + key.hint)),
      el('td', {}, when(key.created_at)),
      el('td', {}, key.api_version),
      el('td', {}, key.read_only ? el('span', { class: 'tag ro' }, 'Read-only') : 'Full access'),
      el('td', {}, when(key.last_used_at)),
      el('td', { class: 'rotation' }, rotationCell(key)),
      el('td', { class: 'disabled' }, disabled),
      actionsFor(key, 'general'));
  }

  function tokenRow(key) {
    return el('tr', { 'data-key-id': key.id },
      el('td', {}, el('span', { class: 'desc' }, key.description), ' ', el('code', { class: 'hint' }, '…' + key.hint)),
      el('td', {}, when(key.created_at)),
      el('td', {}, when(key.last_used_at)),
      el('td', {}, key.api_version),
      el('td', { class: 'rotation' }, rotationCell(key)),
      actionsFor(key, 'user_token'));
  }

  function auditRow(r) {
    // Times in a change are milliseconds since the epoch.
    const shown = (name, v) => (v === null || v === undefined) ? '—'
      : (/_(until|at)$/.test(name) && /^\d+$/.test(v)) ? new Date(Number(v)).toLocaleString() : v;
    const changes = (r.details && r.details.fields || []).map((f) => f.name + ': ' + shown(f.name, f.before_value) + ' → ' + shown(f.name, f.value)).join('; ');
    const outcome = r.outcome === 'refused' ? el('span', { class: 'tag off', title: r.reason || '' }, 'Refused') : 'Allowed';
    return el('tr', {},
      el('td', {}, when(r.execution_time)),
      el('td', {}, r.actors && r.actors[0] ? r.actors[0].summary : ''),
      el('td', {}, r.action),
      el('td', {}, r.root_resource && r.root_resource.type === 'api_key_reference' ? el('code', {}, r.root_resource.id) : ''),
      el('td', {}, outcome),
      el('td', {}, changes));
  }

  // -- loading ------------------------------------------------------------
  async function loadGeneral() {
    const canList = may('general', 'list');
    $('general-none').hidden = canList;
    $('general-table').hidden = !canList;
    $('create-general').hidden = !may('general', 'create');
    if (!canList) { $('general-empty').hidden = true; return; }
    const data = await api('GET', '/api_keys?type=general&limit=1000');
    const body = $('general-table').tBodies[0];
    body.replaceChildren(...data.api_keys.map(generalRow));
    $('general-empty').hidden = data.api_keys.length > 0;
  }

  async function loadTokens() {
    $('create-token').hidden = !may('user_token', 'create');
    const data = await api('GET', '/users/me/tokens?limit=1000');
    $('tokens-table').tBodies[0].replaceChildren(...data.api_keys.map(tokenRow));
    $('tokens-empty').hidden = data.api_keys.length > 0;
  }

  async function loadOthers() {
    const canList = !!(me && me.may.others_tokens.includes('list'));
    $('others').hidden = !canList;
    if (!canList) return;
    const data = await api('GET', '/api_keys?type=user_token&limit=1000');
    const theirs = data.api_keys.filter((k) => k.owner !== me.user.id);
    $('others-table').tBodies[0].replaceChildren(...theirs.map((k) => el('tr', { 'data-key-id': k.id },
      el('td', {}, k.owner || ''),
      el('td', {}, el('span', { class: 'desc' }, k.description), ' ', el('code', { class: 'hint' }, '…' + k.hint)),
      el('td', {}, when(k.created_at)),
      el('td', {}, when(k.last_used_at)),
      el('td', {}, k.api_version),
      el('td', {}, k.disabled ? el('span', {}, 'by ', k.disabled_by, ' on ', when(k.disabled_at)) : 'No'))));
    $('others-empty').hidden = theirs.length > 0;
  }

  async function loadAudit(more) {
    $('audit').hidden = !me.may.audit_records;
    if (!me.may.audit_records) return;
    // What changed (reads are in the trail too, through the API).
    const q = '/audit/records?limit=25&actions=' + CHANGES + (more && auditCursor ? '&cursor=' + encodeURIComponent(auditCursor) : '');
    const data = await api('GET', q);
    const body = $('audit-table').tBodies[0];
    const rows = data.records.map(auditRow);
    if (more) body.append(...rows); else body.replaceChildren(...rows);
    auditCursor = data.next_cursor;
    $('audit-more').hidden = !auditCursor;
  }
  $('audit-refresh').addEventListener('click', () => loadAudit(false).catch(fail));
  $('audit-more').addEventListener('click', () => loadAudit(true).catch(fail));

  async function refresh() {
    try {
      me = await api('GET', '/me');
      const role = me.user.role ? me.user.role.replace(/_/g, ' ') : 'removed';
      $('who').textContent = 'Signed in as ' + me.user.id + ' (' + role + ') in ' + me.user.account;
      await Promise.all([loadGeneral(), loadTokens(), loadOthers(), loadAudit(false)]);
      document.body.dataset.ready = 'true';
    } catch (err) {
      fail(err);
    }
  }
  refresh();
})();
