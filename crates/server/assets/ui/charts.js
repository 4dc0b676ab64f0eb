// Small inline-SVG bar charts: no library, no network.
"use strict";
window.FLCharts = (function () {
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  // Draw bars: `series` = [{name, values, cls}], drawn over each other from
  // the bottom (the first should be the largest). `labels` name each bucket.
  function bars(container, labels, series, fmt, opts) {
    opts = opts || {};
    container.textContent = "";
    const W = 600, H = opts.height || 170, L = 44, B = 20, T = 8, R = 6;
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
    const total = series.map((s) => s.values.reduce((a, b) => a + b, 0));
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": series.map((s, i) => `${s.name}: ${fmt(total[i])} in total`).join("; ") }, container);
    const n = Math.max(labels.length, 1), cw = (W - L - R) / n, bw = Math.max(1, cw * 0.78);
    for (let i = 0; i <= 2; i++) {
      const y = T + (H - T - B) * (1 - i / 2);
      el("line", { x1: L, x2: W - R, y1: y, y2: y, class: "axis" }, svg);
      const t = el("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, svg);
      t.textContent = fmt((max * i) / 2);
    }
    series.forEach((s, si) => {
      s.values.forEach((v, i) => {
        if (!(v > 0)) return;
        const h = ((H - T - B) * v) / max;
        const r = el("rect", { x: L + i * cw + (cw - bw) / 2, y: H - B - h, width: bw, height: Math.max(h, 0.5), class: s.cls || "s" + si }, svg);
        el("title", {}, r).textContent = `${labels[i]}: ${s.name} ${fmt(v)}`;
      });
    });
    const step = Math.ceil(n / 6);
    labels.forEach((lab, i) => {
      if (i % step !== 0) return;
      const t = el("text", { x: L + i * cw + cw / 2, y: H - 5, "text-anchor": "middle" }, svg);
      t.textContent = lab;
    });
    if (series.length > 1) {
      const lg = document.createElement("div");
      lg.className = "legend";
      series.forEach((s, si) => {
        const span = document.createElement("span");
        const i = document.createElement("i");
        i.className = s.cls || "s" + si;
        span.append(i, `${s.name} (${fmt(total[si])})`);
        lg.appendChild(span);
      });
      container.appendChild(lg);
    }
  }
  return { bars };
})();
