// The guest page. Every name from the node is put in the page as text (textContent), never as markup.
"use strict";

const TOKEN_HEADER = "x-p2pnode-guest";
let token = sessionStorage.getItem("p2pnode-guest") || "";

async function load() {
  const response = await fetch("/guest/files");
  if (response.status === 401) return false;
  const data = await response.json();
  document.getElementById("door").hidden = true;
  document.getElementById("inside").hidden = false;
  document.getElementById("count").textContent = "(" + data.files.length + ")";
  document.getElementById("files").replaceChildren(...data.files.map(f => el("li", { class: "file" }, [
    el("a", { href: "/guest/files/" + f.id, download: f.path.split("/").pop(), class: "name", text: f.path }),
    el("span", { class: "muted size", text: bytes(f.size) }),
  ])));
  document.getElementById("upload-section").hidden = !data.upload;
  return true;
}

document.getElementById("pin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("pin-error");
  const response = await fetch("/guest/pin", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ pin: document.getElementById("pin").value }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) { error.textContent = body.error || response.statusText; return; }
  error.textContent = "";
  token = body.token;
  sessionStorage.setItem("p2pnode-guest", token);
  await load();
});

document.getElementById("upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const list = document.getElementById("uploads");
  for (const file of document.getElementById("upload").files) {
    const line = el("li", { text: file.name + ": sending…" });
    list.append(line);
    const response = await fetch("/guest/upload?name=" + encodeURIComponent(file.name), {
      method: "POST", headers: { [TOKEN_HEADER]: token }, body: file,
    });
    const body = await response.json().catch(() => ({}));
    line.textContent = file.name + ": " + (response.ok ? "sent as " + body.saved : (body.error || response.statusText));
  }
});

load();
