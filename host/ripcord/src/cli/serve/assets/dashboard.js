// The on-call dashboard: every guard live (GET /api/v1/guards every 5 s), pull / approve / reject for the roles
// that may. Text from the server is only ever set as text (textContent), never parsed as HTML.
"use strict";

const RANK = { viewer: 0, operator: 1, approver: 2 };
let session = null;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function revision(r) {
  return /^\d+$/.test(r) ? "v" + r : r;
}

function traffic(g) {
  if (!g.primary) return g.error ? "error" : "-";
  if (g.primary === g.candidate) return revision(g.primary) + " 100%";
  const c = Math.round(g.candidate_share * 100);
  return revision(g.primary) + " " + (100 - c) + "% / " + revision(g.candidate) + " " + c + "%";
}

async function api(method, path, body) {
  const headers = {};
  if (method !== "GET" && session) headers["x-csrf-token"] = session.csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let answer = null;
  try { answer = await response.json(); } catch (e) { answer = null; }
  return { status: response.status, answer };
}

function show(loggedIn) {
  document.getElementById("login").hidden = loggedIn;
  document.getElementById("board").hidden = !loggedIn;
  document.getElementById("logout").hidden = !loggedIn;
  document.getElementById("who").textContent = loggedIn ? session.name + " (" + session.role + ")" : "";
  // Logged out, nothing of what the session saw stays in the page.
  if (!loggedIn) {
    document.getElementById("guards").replaceChildren();
    document.getElementById("action-result").textContent = "";
  }
}

async function act(guard, action) {
  const reason = window.prompt(action + " " + guard + ": why?");
  if (!reason) return;
  const { status, answer } = await api("POST", "/api/v1/guards/" + encodeURIComponent(guard) + "/" + action, { reason });
  const said = answer && answer.error ? answer.error.message : answer && answer.guards && answer.guards[0]
    ? answer.guards[0].outcome + ": " + answer.guards[0].reason : "HTTP " + status;
  document.getElementById("action-result").textContent = action + " " + guard + ": " + said;
  await load();
}

function row(g) {
  const tr = el("tr");
  tr.dataset.guard = g.guard;
  const last = g.last_decision || {};
  const pending = g.approval && g.approval.state === "pending";
  if (pending) tr.className = "pending";
  tr.append(
    el("td", g.guard),
    el("td", traffic(g)),
    el("td", g.known_good ? revision(g.known_good) : "-"),
    el("td", last.verdict ? last.verdict + " at " + last.at : "-", last.verdict ? "verdict-" + last.verdict : ""),
    el("td", last.reason || g.error || "", "why"),
    el("td", (g.notes || []).join("; ")),
  );
  const actions = el("td");
  const report = el("a", "report");
  report.href = "/guards/" + encodeURIComponent(g.guard) + "/report";
  actions.append(report, " ");
  const rank = RANK[session.role] || 0;
  const button = (label, action) => {
    const b = el("button", label);
    b.type = "button";
    b.dataset.action = action;
    b.addEventListener("click", () => act(g.guard, action));
    actions.append(b);
  };
  if (rank >= RANK.operator && g.primary) button("Pull", "pull");
  if (rank >= RANK.approver && pending) {
    button("Approve", "approve");
    button("Reject", "reject");
  }
  tr.append(actions);
  return tr;
}

async function load() {
  const { status, answer } = await api("GET", "/api/v1/guards");
  if (status === 401) { session = null; show(false); return; }
  if (status !== 200 || !answer) return;
  const body = document.getElementById("guards");
  body.replaceChildren(...answer.guards.map(row));
  document.getElementById("updated").textContent = "as of " + answer.at;
}

async function start() {
  const { status, answer } = await api("GET", "/api/v1/session");
  if (status === 200) { session = answer; show(true); await load(); } else { show(false); }
}

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = document.getElementById("token").value;
  const { status, answer } = await api("POST", "/login", { token });
  if (status === 200) {
    session = answer;
    document.getElementById("token").value = "";
    document.getElementById("login-error").textContent = "";
    show(true);
    await load();
  } else {
    document.getElementById("login-error").textContent = answer && answer.error ? answer.error.message : "HTTP " + status;
  }
});

document.getElementById("logout").addEventListener("click", async () => {
  await api("POST", "/logout");
  session = null;
  show(false);
});

setInterval(() => { if (session) load(); }, 5000);
start();
