// The console's only script (served from /console/assets, so the Content-Security-Policy's script-src 'self'
// allows it): draws the plots whose data each page embeds as JSON, and sends the action forms to the API
// with the session's CSRF token.
(function () {
  'use strict';
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
  const flash = document.getElementById('flash');

  function say(message, isError) {
    if (!flash) return;
    flash.textContent = message;
    flash.className = isError ? 'flash error' : 'flash ok';
  }

  const saved = sessionStorage.getItem('opsflow-flash');
  if (saved) {
    sessionStorage.removeItem('opsflow-flash');
    say(saved, false);
  }

  // ---- plots ----
  const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#be185d', '#4b5563'];
  for (const figure of document.querySelectorAll('figure[data-plot]')) {
    const data = JSON.parse(document.getElementById(figure.dataset.plot).textContent);
    const series = [{ label: data.time === false ? 'run' : 'time' }].concat(
      data.series.map((s, i) => ({
        label: s.label,
        stroke: s.color ?? COLORS[i % COLORS.length],
        width: 2,
        points: { show: true, size: 5 },
        spanGaps: false,
        value: (_u, v) => (v == null ? '—' : `${v}${data.unit ? ' ' + data.unit : ''}`),
      })),
    );
    const width = Math.max(320, Math.min(figure.clientWidth || 900, 1100));
    const plot = new uPlot(
      {
        width,
        height: 220,
        series,
        scales: { x: { time: data.time !== false } },
        axes: [{}, { label: data.unit ?? '', size: 60 }],
      },
      [data.x].concat(data.series.map((s) => s.values)),
      figure.querySelector('.plot-area'),
    );
    figure.dataset.drawn = String(plot.series.length - 1);
  }

  // ---- actions: a form sends its fields as JSON to the API path it names ----
  // A field's data-kind says what JSON it is: list (comma-separated strings), number, bool (a checkbox, sent
  // checked or not), datetime (a local date and time, sent as an ISO instant); else a string. An empty field is
  // left out, or sent as null with data-empty="null" (a PATCH clearing it).
  function fieldsOf(form) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      const kind = el.dataset.kind;
      if (kind === 'bool') {
        body[el.name] = el.checked;
        continue;
      }
      const raw = el.value.trim();
      if (raw === '') {
        if (el.dataset.empty === 'null') body[el.name] = null;
        continue;
      }
      if (kind === 'list') body[el.name] = raw.split(/[\s,]+/).filter(Boolean);
      else if (kind === 'number') body[el.name] = Number(raw);
      else if (kind === 'datetime') body[el.name] = new Date(raw).toISOString();
      else body[el.name] = el.value;
    }
    return body;
  }

  for (const form of document.querySelectorAll('form[data-api]')) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
      const body = fieldsOf(form);
      const button = form.querySelector('button');
      if (button) button.disabled = true;
      try {
        const res = await fetch(form.dataset.api, {
          method: form.dataset.method ?? 'POST',
          credentials: 'same-origin',
          headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
          body: JSON.stringify(body),
        });
        const answer = await res.json().catch(() => ({}));
        if (!res.ok) {
          say(`${form.dataset.what ?? 'Action'} failed: ${answer.error?.message ?? res.status}`, true);
          if (button) button.disabled = false;
          return;
        }
        if (form.dataset.reveal) {
          // A secret shown once: on this page only, never kept in storage across the reload.
          say(
            `${form.dataset.what ?? 'Done'}: done. Copy it now, it is not shown again: ${answer[form.dataset.reveal]}`,
            false,
          );
          if (button) button.disabled = false;
          return;
        }
        sessionStorage.setItem('opsflow-flash', `${form.dataset.what ?? 'Done'}: done`);
        window.location.reload();
      } catch (err) {
        say(`${form.dataset.what ?? 'Action'} failed: ${err}`, true);
        if (button) button.disabled = false;
      }
    });
  }
})();
