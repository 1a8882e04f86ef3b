'use strict';
// Login: a double-submit token (cookie + header) guards the form; the password goes in the body.
(function () {
  let token = null;
  const msg = document.getElementById('msg');
  async function fetchToken() {
    const r = await fetch('/api/login-token', {credentials: 'same-origin'});
    token = (await r.json()).token;
  }
  fetchToken().catch(() => { msg.textContent = 'The server cannot be reached.'; });
  document.getElementById('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    if (!token) await fetchToken();
    const body = new URLSearchParams();
    body.set('user', document.getElementById('user').value);
    body.set('password', document.getElementById('password').value);
    const r = await fetch('/api/login', {
      method: 'POST', credentials: 'same-origin', body: body,
      headers: {'X-CSRF-Token': token}
    });
    let data = {};
    try { data = await r.json(); } catch (e) { /* not JSON */ }
    if (r.ok) {
      window.location.assign('/');
      return;
    }
    msg.textContent = data.error || ('Login failed (' + r.status + ')');
    if (r.status === 403) await fetchToken();
  });
})();
