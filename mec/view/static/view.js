// The MEC testbed view: folds the server's stream of items (mec/view/feed.py) into a state
// and draws it as SVG: topology, UEs, replicas and steering, probe latency strips, event log.
// Live: every item is applied as it comes. Replay: all items first, then the slider picks
// the time T and the state is folded from the items up to T.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const STRIP_S = 20;             // seconds of requests in a latency strip
const EVENTS_SHOWN = 300;
const LAT_MIN = 0.5, LAT_MAX = 3000;   // ms, the strip's log scale
const ROLE_ORDER = { primary: 0, backup: 1, secondary: 2 };

let meta = { mode: "live", title: "" };
let items = [];                 // replay: every item, sorted by t
let state = emptyState(null);
let serverNow = null, recvAt = 0, replayT = null, complete = false, dirty = false;

function emptyState(topology, label) {
  const ues = {};
  for (const u of (topology ? topology.ues : [])) ues[u.name] = u.site;
  return { topology, label: label || "", t0: null, ues, roles: {}, steering: [], containers: null,
           probes: {}, events: [], dead: {}, seq: 0 };
}

// ------------------------------------------------------------------ folding
function apply(s, item) {
  s.seq = item.seq;
  switch (item.type) {
    case "testbed": {
      const probes = s.probes;
      Object.assign(s, emptyState(item.topology, item.label));
      s.probes = probes;        // a probe log spans its testbed only, keep the others' strips
      s.t0 = item.t;
      break;
    }
    case "event": applyEvent(s, item); break;
    case "ues": s.ues = Object.assign({}, s.ues, item.sites); break;
    case "steering": s.steering = item.rows; break;
    case "containers": s.containers = item.engines; break;
    case "probe": {
      const p = s.probes[item.probe] || (s.probes[item.probe] = { sla: item.sla_ms, rows: [] });
      if (item.sla_ms != null) p.sla = item.sla_ms;
      for (const r of item.rows) p.rows.push(r);
      if (meta.mode === "live" && p.rows.length > 12000) p.rows.splice(0, p.rows.length - 8000);
      break;
    }
  }
}

function applyEvent(s, item) {
  const f = item.fields || {};
  if (s.t0 === null) s.t0 = item.t;
  if (item.kind === "roles" && f.service) s.roles[f.service] = f.roles || {};
  if (item.kind === "move.attached" && f.ue) s.ues[f.ue] = f.to_site;
  if (item.kind === "component.died") s.dead[f.name] = { kind: f.component, detail: f.detail, t: item.t };
  if (item.kind === "component.recovered") delete s.dead[f.name];
  if (item.kind === "cloudlet.failed") s.dead["cloudlet " + f.cloudlet] = { kind: "cloudlet", detail: "crashed by the experiment", t: item.t };
  if (shown(item.kind)) {
    s.events.push(item);
    if (s.events.length > EVENTS_SHOWN) s.events.shift();
  }
}

function shown(kind) {
  if (kind.endsWith(".start") && kind !== "migration.start") return false;
  return !kind.startsWith("move.request");
}

function foldUpTo(t) {
  const s = emptyState(null);
  for (const it of items) {
    if (it.t > t) break;
    apply(s, it);
  }
  return s;
}

// ------------------------------------------------------------------ drawing helpers
function el(name, attrs, parent, text) {
  const e = document.createElementNS(SVGNS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function html(tag, attrs, parent, text) {
  const e = document.createElement(tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function sitePos(site) {
  return { x: 120 + site.x * 760, y: 230 + (site.y - 0.5) * 300 };
}

// The replicas at a cloudlet: the services' roles there, and any other container of its engine.
function replicasAt(s, cloudlet) {
  const out = [];
  for (const svc of Object.keys(s.roles).sort()) {
    const role = s.roles[svc][cloudlet];
    if (role) out.push({ service: svc, name: `${svc}-${cloudlet}`, role });
  }
  const listed = s.containers ? s.containers[cloudlet] : undefined;
  for (const c of (listed || [])) {
    const short = c.name.replace(/^[a-z0-9]{2,5}-/, "");
    if (!out.some(r => r.name === short)) out.push({ service: "", name: short, role: "other", status: c.status });
  }
  return { replicas: out, engineDown: listed === null };
}

function servingOf(s, ue) {
  const rows = s.steering.filter(r => r.ue === ue && r.replica);
  if (rows.length) return rows.map(r => ({ service: r.service, cloudlet: r.replica, how: "steering" }));
  // replay (no Network Manager): the replica that answered the probe last
  const out = [];
  for (const [probe, instance] of Object.entries(answeredBy(s, now()))) {
    if (!probe.includes(ue) && Object.keys(s.ues).length > 1) continue;
    const parts = instance.split("-");
    out.push({ service: parts.slice(0, -1).join("-"), cloudlet: parts[parts.length - 1], how: "answered" });
  }
  return out;
}

// ------------------------------------------------------------------ the map
function drawMap(s) {
  const svg = document.getElementById("map");
  svg.textContent = "";
  const topo = s.topology;
  if (!topo) { el("text", { x: 20, y: 40 }, svg, "waiting for the testbed..."); return; }
  const sites = {};
  for (const site of topo.sites) sites[site.name] = Object.assign({}, site, sitePos(site));
  const gLinks = el("g", {}, svg);
  for (const l of topo.links) {
    const a = sites[l.a], b = sites[l.b];
    const g = el("g", { class: "link", "data-link": `${l.a}-${l.b}` }, gLinks);
    el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y }, g);
    el("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 8, "text-anchor": "middle" }, g, l.label);
  }
  const cloudletPos = {};
  for (const site of Object.values(sites)) {
    site.cloudlets.forEach((c, i) => {
      const { replicas, engineDown } = replicasAt(s, c.name);
      const dead = engineDown || s.dead[`cloudlet ${c.name}`] || Object.keys(s.dead).some(n => n.includes(`engine`) && n.endsWith(c.name));
      const w = 170, h = 26 + 22 * Math.max(1, replicas.length);
      const x = site.x - w / 2 + (i - (site.cloudlets.length - 1) / 2) * (w + 10), y = site.y + 55;
      cloudletPos[c.name] = { x: site.x + (i - (site.cloudlets.length - 1) / 2) * (w + 10), y };
      el("line", { x1: site.x, y1: site.y, x2: x + w / 2, y2: y, stroke: "#aaa" }, svg);
      const g = el("g", { class: "cloudlet" + (dead ? " dead" : ""), "data-cloudlet": c.name }, svg);
      el("rect", { x, y, width: w, height: h, rx: 4 }, g);
      el("text", { x: x + 6, y: y + 16 }, g, `${c.name} ${c.ip}${dead ? "  (engine down)" : ""}`);
      replicas.forEach((r, j) => {
        const rg = el("g", { class: `replica ${r.role}`, "data-service": r.service, "data-cloudlet": c.name,
                             "data-role": r.role }, g);
        el("rect", { x: x + 6, y: y + 22 + 22 * j, width: w - 12, height: 19, rx: 3 }, rg);
        el("text", { x: x + 10, y: y + 36 + 22 * j }, rg,
           `${r.name}: ${r.role === "other" ? (r.status || "container") : r.role}`);
      });
    });
  }
  const cloud = topo.cloud, cs = sites[cloud.site];
  if (cs) {
    const dead = Object.keys(s.dead).some(n => n.includes("registry"));
    const g = el("g", { class: "cloud" + (dead ? " dead" : ""), "data-cloud": cloud.name }, svg);
    const x = cs.x - 75, y = cs.y - 205;
    el("line", { x1: cs.x, y1: cs.y, x2: x + 75, y2: y + 40, stroke: "#2471a3", "stroke-dasharray": "3 3" }, svg);
    el("rect", { x, y, width: 150, height: 40, rx: 6 }, g);
    el("text", { x: x + 6, y: y + 16 }, g, `${cloud.name}: registry${dead ? " DOWN" : ""}`);
    el("text", { x: x + 6, y: y + 32, "font-size": 11 }, g, cloud.link);
  }
  for (const site of Object.values(sites)) {
    const g = el("g", { class: "site", "data-site": site.name }, svg);
    el("circle", { cx: site.x, cy: site.y, r: 20 }, g);
    el("text", { class: "name", x: site.x, y: site.y + 4, "text-anchor": "middle" }, g, site.name);
  }
  const perSite = {};
  for (const [ue, siteName] of Object.entries(s.ues).sort()) {
    const site = sites[siteName];
    if (!site) continue;
    const k = perSite[siteName] = (perSite[siteName] || 0) + 1;
    const x = site.x + (k - 1) * 34 - 0, y = site.y - 70;
    for (const sv of servingOf(s, ue)) {
      const cp = cloudletPos[sv.cloudlet];
      if (cp) el("path", { class: "steer", "data-ue": ue, "data-service": sv.service, "data-replica": sv.cloudlet,
                           d: `M ${x} ${y} Q ${(x + cp.x) / 2 + 40} ${(y + cp.y) / 2} ${cp.x} ${cp.y}` }, svg);
    }
    const g = el("g", { class: "ue", "data-ue": ue, "data-site": siteName }, svg);
    el("line", { x1: x, y1: y, x2: site.x, y2: site.y - 20, stroke: "#27ae60" }, g);
    el("circle", { cx: x, cy: y, r: 13 }, g);
    el("text", { x: x + 16, y: y - 10 }, g, `${ue} @ ${siteName}`);
  }
}

// ------------------------------------------------------------------ the side panel
function drawServices(s) {
  const box = document.getElementById("services");
  box.textContent = "";
  const services = Object.keys(s.roles).sort();
  if (!services.length) { html("p", { class: "none" }, box, "no service deployed yet"); return; }
  for (const svc of services) {
    const t = html("table", { "data-service": svc }, box);
    const head = html("tr", {}, t);
    html("th", { colspan: 2 }, head, `service ${svc}`);
    const roles = Object.entries(s.roles[svc]).sort((a, b) => ROLE_ORDER[a[1]] - ROLE_ORDER[b[1]]);
    for (const [cloudlet, role] of roles) {
      const tr = html("tr", {}, t);
      html("td", {}, tr, cloudlet);
      html("td", { class: `role-${role}`, "data-role": role, "data-cloudlet": cloudlet }, tr, role);
    }
    for (const ue of Object.keys(s.ues).sort()) {
      const sv = servingOf(s, ue).filter(x => x.service === svc);
      if (!sv.length) continue;
      const tr = html("tr", { class: "serving", "data-ue": ue }, t);
      html("td", {}, tr, `${ue} served by`);
      html("td", { "data-replica": sv[0].cloudlet }, tr,
           `${sv[0].cloudlet} (${sv[0].how === "steering" ? "Network Manager steering" : "last reply"})`);
    }
  }
}

function drawFaults(s) {
  const box = document.getElementById("faults");
  box.textContent = "";
  const dead = Object.entries(s.dead);
  if (!dead.length) { html("p", { class: "none" }, box, "none"); return; }
  for (const [name, d] of dead) html("p", { class: "fault" }, box, `${name} (${d.kind}) down: ${d.detail || ""}`);
}

const FIELD_KEYS = ["ue", "service", "cloudlet", "failed", "new", "target", "source", "name", "detail",
                    "outcome", "cause", "reused", "strategy", "error"];

function describe(item) {
  const f = item.fields || {};
  const parts = [];
  if (f.from_site !== undefined && f.to_site !== undefined) parts.push(`${f.from_site}\u2192${f.to_site}`);
  if (item.kind === "roles") parts.push(Object.entries(f.roles || {}).map(([c, r]) => `${c}:${r}`).join(" "));
  for (const k of FIELD_KEYS) if (f[k] !== undefined && f[k] !== null && f[k] !== "") parts.push(`${k}=${f[k]}`);
  for (const k of ["duration_s", "total_s", "handover_s"]) if (typeof f[k] === "number") parts.push(`${k.replace("_s", "")} ${f[k].toFixed(3)} s`);
  if (typeof f.reroute_ms === "number") parts.push(`reroute ${f.reroute_ms.toFixed(1)} ms`);
  return parts.join(" ");
}

function kindClass(kind) {
  if (kind.startsWith("move")) return "k-move";
  if (kind === "roles" || kind.startsWith("proactive")) return "k-roles";
  if (kind.startsWith("migration")) return "k-migration";
  if (kind.startsWith("component.") || kind.includes("fail") || kind === "error") return "k-fault";
  return "";
}

function drawEvents(s) {
  const box = document.getElementById("events");
  box.textContent = "";
  const t0 = s.t0 || 0;
  for (let i = s.events.length - 1; i >= 0; i--) {
    const e = s.events[i];
    html("li", { class: kindClass(e.kind), "data-kind": e.kind }, box,
         `+${(e.t - t0).toFixed(3)} s  ${e.kind}  ${describe(e)}`);
  }
}

// ------------------------------------------------------------------ latency strips
function drawProbes(s, now) {
  const box = document.getElementById("probes");
  const answered = answeredBy(s, now);
  for (const [label, p] of Object.entries(s.probes)) {
    let div = box.querySelector(`.strip[data-probe="${label}"]`);
    if (!div) {
      div = html("div", { class: "strip", "data-probe": label }, box);
      html("div", { class: "label" }, div);
      div.appendChild(document.createElementNS(SVGNS, "svg"));
    }
    const svg = div.querySelector("svg");
    svg.setAttribute("viewBox", "0 0 1000 140");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.textContent = "";
    const from = now - STRIP_S;
    const X = t => 40 + (t - from) / STRIP_S * 950;
    const Y = ms => 130 - (Math.log10(Math.min(Math.max(ms, LAT_MIN), LAT_MAX)) - Math.log10(LAT_MIN))
                        / (Math.log10(LAT_MAX) - Math.log10(LAT_MIN)) * 115;
    for (const ms of [1, 10, 100, 1000]) {
      el("line", { x1: 40, x2: 990, y1: Y(ms), y2: Y(ms), stroke: "#eee" }, svg);
      el("text", { x: 2, y: Y(ms) + 4, "font-size": 10 }, svg, `${ms} ms`);
    }
    let ok = 0, failed = 0, above = 0, pts = [];
    for (let i = lowerBound(p.rows, from); i < p.rows.length; i++) {
      const [t, lat, status] = p.rows[i];
      if (t > now) break;
      if (lat !== null && /^(2\d\d|ok)$/.test(status)) {
        ok++; pts.push(`${X(t).toFixed(1)},${Y(lat).toFixed(1)}`);
        if (p.sla != null && lat > p.sla) above++;
      } else if (status !== "cancelled") {
        failed++;
        el("line", { class: "failed", x1: X(t), x2: X(t), y1: 8, y2: 130, stroke: "#e74c3c", "stroke-opacity": 0.5 }, svg);
      }
    }
    if (pts.length) el("polyline", { points: pts.join(" "), fill: "none", stroke: "#2471a3", "stroke-width": 1.2 }, svg);
    if (p.sla != null) {
      el("line", { class: "sla", x1: 40, x2: 990, y1: Y(p.sla), y2: Y(p.sla), stroke: "#d35400", "stroke-dasharray": "6 4" }, svg);
      el("text", { x: 992, y: Y(p.sla) - 3, "text-anchor": "end", fill: "#d35400", "font-size": 10 }, svg, `SLA ${p.sla} ms`);
    }
    div.querySelector(".label").textContent =
      `probe ${label}: last ${STRIP_S} s: ${ok} replies, ${failed} failed` +
      (p.sla != null ? `, ${above} above the SLA` : "") + (answered[label] ? `; last answer from ${answered[label]}` : "");
    div.dataset.failed = failed;
  }
}

// The instance that answered each probe's last reply sent up to T.
function answeredBy(s, t) {
  const out = {};
  for (const [label, p] of Object.entries(s.probes)) {
    for (let i = lowerBound(p.rows, t) - 1; i >= 0 && i > p.rows.length - 2000; i--) {
      if (p.rows[i][3] && p.rows[i][1] !== null) { out[label] = p.rows[i][3]; break; }
    }
  }
  return out;
}

function lowerBound(rows, t) {
  let lo = 0, hi = rows.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (rows[mid][0] < t) lo = mid + 1; else hi = mid; }
  return lo;
}

// ------------------------------------------------------------------ rendering
function now() {
  if (meta.mode === "replay") return replayT;
  return serverNow === null ? 0 : serverNow + (performance.now() - recvAt) / 1000;
}

function render() {
  dirty = false;
  const s = meta.mode === "replay" ? foldUpTo(replayT) : state;
  drawMap(s);
  drawServices(s);
  drawFaults(s);
  drawEvents(s);
  drawProbes(s, now());
  document.getElementById("clock").textContent = s.t0 !== null ? `${s.label} +${(now() - s.t0).toFixed(1)} s` : "";
  document.body.dataset.seq = s.seq;
  window.viewState = s;
}

function schedule() {
  if (!dirty) { dirty = true; setTimeout(render, 20); }
}

// ------------------------------------------------------------------ the stream
function onMessage(msg) {
  if (msg.meta) {
    meta = msg.meta;
    document.getElementById("title").textContent = meta.title || "";
    document.getElementById("mode").textContent = meta.mode;
    document.body.dataset.mode = meta.mode;
  }
  if (msg.now !== undefined) { serverNow = msg.now; recvAt = performance.now(); }
  if (msg.items) {
    if (meta.mode === "replay") { for (const it of msg.items) items.push(it); }
    else { for (const it of msg.items) apply(state, it); schedule(); }
  }
  if (msg.complete) startReplay();
}

function startReplay() {
  complete = true;
  items.sort((a, b) => a.t - b.t || a.seq - b.seq);
  const slider = document.getElementById("slider");
  const t0 = items.length ? items[0].t : 0, t1 = items.length ? items[items.length - 1].t : 0;
  document.getElementById("replay").hidden = false;
  slider.min = t0; slider.max = t1; slider.step = 0.05; slider.value = t0;
  replayT = t0;
  document.body.dataset.replayFrom = t0;
  document.body.dataset.replayTo = t1;
  const show = () => { replayT = parseFloat(slider.value); document.getElementById("at").textContent = `+${(replayT - t0).toFixed(2)} s`; render(); };
  slider.addEventListener("input", show);
  let timer = null;
  document.getElementById("play").addEventListener("click", () => {
    if (timer) { clearInterval(timer); timer = null; return; }
    timer = setInterval(() => {
      slider.value = Math.min(t1, parseFloat(slider.value) + 0.1);
      show();
      if (parseFloat(slider.value) >= t1) { clearInterval(timer); timer = null; }
    }, 100);
  });
  window.seek = t => { slider.value = t; show(); };   // used by tests and the docs' screenshot
  show();
  document.getElementById("status").textContent = `${items.length} items`;
}

function connect() {
  const status = document.getElementById("status");
  const source = new EventSource("/api/stream");
  source.onopen = () => {   // a new stream starts from the first item again
    state = emptyState(null); items = [];
    status.textContent = "live"; status.className = "badge live";
  };
  source.onmessage = ev => onMessage(JSON.parse(ev.data));
  source.onerror = () => {
    if (complete) { source.close(); return; }
    status.textContent = "connection lost: retrying"; status.className = "badge lost";
  };
  setInterval(() => { if (meta.mode === "live") schedule(); }, 250);  // the strips scroll
}

connect();
