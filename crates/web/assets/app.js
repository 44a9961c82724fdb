// The page on this machine. Every name from the network is put in the page as text (textContent),
// never as markup. The key comes from the address's fragment, which the browser never sends.
"use strict";

const KEY_HEADER = "x-p2pnode-key";
let key = keyFrom(location.hash) || sessionStorage.getItem("p2pnode-key") || "";
const runs = new Map(); // id -> {run, element, rows}
let files = [];
let peersTimer = null;

function keyFrom(text) {
  const match = /[#&]k=([0-9a-fA-F]{64})/.exec(text || "");
  return match ? match[1] : null;
}

function duration(secs) {
  if (!isFinite(secs) || secs < 0) return "";
  if (secs < 60) return Math.ceil(secs) + " s";
  if (secs < 3600) return Math.floor(secs / 60) + " min " + Math.round(secs % 60) + " s";
  return Math.floor(secs / 3600) + " h " + Math.round((secs % 3600) / 60) + " min";
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = Object.assign({ [KEY_HEADER]: key }, opts.headers || {});
  const response = await fetch(path, opts);
  if (response.status === 401) { lock(); throw new Error("locked"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function lock() {
  document.getElementById("open").hidden = true;
  document.getElementById("locked").hidden = false;
}

function unlock() {
  document.getElementById("locked").hidden = true;
  document.getElementById("open").hidden = false;
}

// Peers and this node's shares.
async function loadPeers() {
  const data = await api("/api/peers");
  unlock();
  sessionStorage.setItem("p2pnode-key", key);
  document.getElementById("me").textContent = data.me.name + " · " + data.me.short;
  const list = document.getElementById("peers");
  list.replaceChildren(...data.peers.map(p => el("li", { class: "card peer" }, [
    el("strong", { text: p.name }),
    el("span", { class: "muted mono", text: " " + p.short }),
    el("span", { class: p.trusted ? "badge good" : "badge", text: p.trusted ? "trusted as " + p.trusted : "not paired" }),
    el("div", { class: "muted", text: p.transports.join(", ") + " · " + p.ip + " · " + p.files + " files" }),
  ])));
  if (data.peers.length === 0) list.append(el("li", { class: "muted", text: "No peers yet: is p2pnode serve running on another machine of this network?" }));
  document.getElementById("peer-count").textContent = "(" + data.peers.length + ")";
  const total = data.me.shares.reduce((sum, f) => sum + f.size, 0);
  document.getElementById("share-count").textContent = data.me.shares.length + " files, " + bytes(total);
  document.getElementById("share-list").replaceChildren(...data.me.shares.map(f =>
    el("li", {}, [el("span", { text: f.path }), el("span", { class: "muted", text: " " + bytes(f.size) })])));
}

// Every file on the LAN, as a tree.
async function loadFiles() {
  const query = document.getElementById("query").value.trim();
  const error = document.getElementById("files-error");
  try {
    const data = await api("/api/files" + (query ? "?q=" + encodeURIComponent(query) : ""));
    files = data.files.filter(f => f.selected);
    error.textContent = data.error || "";
  } catch (e) {
    if (e.message !== "locked") error.textContent = e.message;
    files = [];
  }
  drawTree();
}

function drawTree() {
  const root = { folders: new Map(), files: [] };
  for (const file of files) {
    const parts = file.path.split("/");
    let node = root;
    for (const part of parts.slice(0, -1)) {
      if (!node.folders.has(part)) node.folders.set(part, { folders: new Map(), files: [] });
      node = node.folders.get(part);
    }
    node.files.push(Object.assign({ name: parts[parts.length - 1] }, file));
  }
  const tree = document.getElementById("tree");
  tree.replaceChildren(...drawFolder(root, "", 0));
  if (files.length === 0) tree.append(el("p", { class: "muted", text: "No files to show." }));
  selectionChanged();
}

function drawFolder(node, path, depth) {
  const items = [];
  for (const [name, sub] of [...node.folders.entries()].sort()) {
    const full = path ? path + "/" + name : name;
    const count = countFiles(sub);
    const summary = el("summary", {}, [
      el("span", { class: "folder", text: name + "/" }),
      el("span", { class: "muted", text: " " + count.files + " files, " + bytes(count.bytes) }),
      el("button", { type: "button", class: "small", text: "Fetch folder", onclick: (e) => { e.preventDefault(); startFetch([full]); } }),
    ]);
    items.push(el("details", { open: depth < 1 }, [summary, el("div", { class: "indent" }, drawFolder(sub, full, depth + 1))]));
  }
  for (const file of node.files.sort((a, b) => a.name.localeCompare(b.name))) items.push(drawFile(file));
  return items;
}

function countFiles(node) {
  let count = { files: node.files.length, bytes: node.files.reduce((s, f) => s + f.size, 0) };
  for (const sub of node.folders.values()) {
    const c = countFiles(sub);
    count.files += c.files; count.bytes += c.bytes;
  }
  return count;
}

function drawFile(file) {
  const partial = file.partial.map(p => p.name + " " + p.percent + " %").join(", ");
  const hosts = file.hosts.join(", ") + (partial ? " (partly: " + partial + ")" : "");
  return el("div", { class: "file" }, [
    el("label", {}, [
      el("input", { type: "checkbox", class: "pick", value: file.id, onchange: selectionChanged }),
      el("span", { class: "name", text: file.name }),
    ]),
    el("span", { class: "muted size", text: bytes(file.size) }),
    el("span", { class: "muted hosts", text: hosts }),
    el("button", { type: "button", class: "small", text: "Fetch", onclick: () => startFetch([file.id]) }),
  ]);
}

function picked() {
  return [...document.querySelectorAll("input.pick:checked")].map(box => box.value);
}

function selectionChanged() {
  const count = new Set(picked()).size;
  const button = document.getElementById("fetch-selected");
  button.disabled = count === 0;
  button.textContent = count ? "Fetch " + count + " selected" : "Fetch selected";
}

async function startFetch(queries) {
  try {
    await api("/api/fetch", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ queries }) });
  } catch (e) {
    if (e.message !== "locked") alert(e.message);
  }
}

// The fetches, drawn as the server tells of them.
function drawRun(run) {
  let shown = runs.get(run.id);
  if (!shown) {
    const element = el("article", { class: "card run", id: "run-" + run.id });
    document.getElementById("runs").prepend(element);
    shown = { element, rows: [] };
    runs.set(run.id, shown);
  }
  shown.run = run;
  const running = run.state === "looking" || run.state === "fetching";
  const resumable = run.state === "failed" || run.state === "cancelled";
  const list = el("div", { class: "run-files" }, run.files.map(f => drawRow(f)));
  shown.rows = [...list.children];
  const files = el("details", { open: run.files.length <= 12 }, [el("summary", { text: run.files.length + " files" }), list]);
  shown.element.replaceChildren(...[
    el("div", { class: "row" }, [
      el("strong", { class: "grow", text: run.queries.join(", ") }),
      el("span", { class: "badge state-" + run.state, text: run.state }),
      running ? el("button", { type: "button", class: "small", text: "Cancel", onclick: () => api("/api/runs/" + run.id + "/cancel", { method: "POST" }).catch(() => {}) }) : null,
      resumable ? el("button", { type: "button", class: "small", text: "Resume", onclick: () => startFetch(run.queries) }) : null,
    ]),
    el("progress", { max: Math.max(run.total, 1), value: run.bytes }),
    el("div", { class: "muted summary" }),
    run.error ? el("p", { class: "error", text: run.error }) : null,
    run.files.length ? files : null,
  ].filter(Boolean));
  drawSummary(shown);
  document.getElementById("fetches").hidden = false;
}

function drawRow(file) {
  const row = el("div", { class: "run-file" }, [
    el("span", { class: "name grow", text: file.to }),
    el("progress", { max: Math.max(file.size, 1), value: file.got }),
    el("span", { class: "muted state" }),
  ]);
  fillRow(row, file);
  return row;
}

function fillRow(row, file) {
  row.querySelector("progress").value = file.got;
  const words = { waiting: "waiting", fetching: Math.floor(100 * file.got / Math.max(file.size, 1)) + " %", done: "done", have: "already have", failed: "failed: " + (file.error || "") };
  row.querySelector(".state").textContent = words[file.state] || file.state;
  row.className = "run-file state-" + file.state;
}

function drawSummary(shown) {
  const run = shown.run;
  const percent = run.total ? Math.floor(100 * run.bytes / run.total) : (run.state === "done" ? 100 : 0);
  let text = percent + " % · " + bytes(run.bytes) + " of " + bytes(run.total);
  if (run.state === "fetching") {
    text += " · " + bytes(run.rate) + "/s";
    if (run.rate > 0) text += " · " + duration((run.total - run.bytes) / run.rate) + " left";
    if (run.sources.length) text += " · from " + run.sources.join(", ");
  }
  const done = run.files.filter(f => f.state === "done").length;
  const have = run.files.filter(f => f.state === "have").length;
  const failed = run.files.filter(f => f.state === "failed").length;
  if (run.files.length) text += " · " + done + " done, " + have + " already here, " + failed + " failed";
  shown.element.querySelector(".summary").textContent = text;
  shown.element.querySelector("progress").value = run.bytes;
}

function onProgress(update) {
  const shown = runs.get(update.id);
  if (!shown) return;
  Object.assign(shown.run, { bytes: update.bytes, rate: update.rate, sources: update.sources });
  for (const [index, file] of update.files) {
    shown.run.files[index] = file;
    if (shown.rows[index]) fillRow(shown.rows[index], file);
  }
  drawSummary(shown);
}

function onUpdate(update) {
  switch (update.kind) {
    case "hello":
      for (const run of update.runs) drawRun(run);
      break;
    case "run": drawRun(update.run); break;
    case "progress": onProgress(update); break;
    case "peers":
      // Peers come in bursts: the page asks once they settle.
      clearTimeout(peersTimer);
      peersTimer = setTimeout(() => { loadPeers().catch(() => {}); loadFiles(); }, 500);
      break;
    case "reload": location.reload(); break;
  }
}

// Server-Sent Events read with fetch: an EventSource cannot send the key in a header.
async function listen() {
  const live = document.getElementById("live");
  for (;;) {
    try {
      const response = await fetch("/api/events", { headers: { [KEY_HEADER]: key } });
      if (response.status === 401) { lock(); return; }
      live.textContent = "live";
      live.className = "badge good";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message.split("\n").filter(l => l.startsWith("data:")).map(l => l.slice(5).trimStart()).join("\n");
          if (data) onUpdate(JSON.parse(data));
        }
      }
    } catch (e) { /* the node went away: try again */ }
    live.textContent = "offline";
    live.className = "badge bad";
    await new Promise(resolve => setTimeout(resolve, 2000));
  }
}

async function start() {
  try {
    await loadPeers();
  } catch (e) {
    if (e.message !== "locked") document.getElementById("unlock-error").textContent = e.message;
    lock();
    return;
  }
  await loadFiles();
  listen();
}

document.getElementById("unlock").addEventListener("submit", (e) => {
  e.preventDefault();
  const typed = document.getElementById("address").value.trim();
  key = keyFrom(typed) || (/^[0-9a-fA-F]{64}$/.test(typed) ? typed : "");
  document.getElementById("unlock-error").textContent = key ? "" : "that is not an address with a key";
  if (key) start();
});
document.getElementById("filter").addEventListener("submit", (e) => { e.preventDefault(); loadFiles(); });
document.getElementById("fetch-selected").addEventListener("click", () => startFetch([...new Set(picked())]));
if (key) start(); else lock();
