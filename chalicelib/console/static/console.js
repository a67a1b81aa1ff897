// The mail console: the read API in a browser (docs/console.md).
// Every string that came by mail is hostile: it reaches the page as text
// (textContent, attribute values), never as markup; the HTML body only inside
// a sandboxed iframe without scripts, under its own Content-Security-Policy.

const TOKEN_KEY = "mails-console-token";
const PAGE = 50;
const POLL_MS = 3000;
// The API is beside the console: /console -> /, /dev/console -> /dev/.
const API = new URL(".", location.href);

const $ = (id) => document.getElementById(id);

const state = {
  mailbox: null, // null: all mail
  cursor: null,
  mails: [], // the summaries loaded for the current mailbox, newest first
  status: "",
  current: null, // the open mail's document
  remote: false,
  boxesCursor: null,
  canListAll: true,
  poller: null,
  blobUrls: [],
  ticket: 0, // which listing request is the latest: older answers are dropped
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path, options = {}) {
  const response = await fetch(new URL(path, API), {
    ...options,
    headers: { Authorization: `Bearer ${token()}`, Accept: "*/*", ...(options.headers || {}) },
    credentials: "omit",
    cache: "no-store",
    redirect: "follow",
  });
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).Message || message;
    } catch {
      // not JSON: the status says enough
    }
    if (response.status === 401 && path !== "mailboxes?limit=1") signOut("The token was refused.");
    throw new ApiError(response.status, `${response.status}: ${message}`);
  }
  return response;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function show(id, visible) {
  $(id).hidden = !visible;
}

function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso || "";
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function address(entry) {
  if (!entry) return "";
  return entry.name ? `${entry.name} <${entry.address}>` : entry.address || "";
}

// -- signing in ---------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  try {
    await api("mailboxes?limit=1");
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("login-error").textContent = error.status === 401 ? "That token is not one of this service's." : error.message;
    return;
  }
  $("token").value = "";
  start();
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.poller);
  state.poller = null;
  closeMail();
  show("app-view", false);
  show("session-actions", false);
  show("login-view", true);
  $("login-error").textContent = reason || "";
  $("token").focus();
}

async function start() {
  show("login-view", false);
  show("app-view", true);
  show("session-actions", true);
  $("login-error").textContent = "";
  state.canListAll = true;
  await loadBoxes(false);
  await selectMailbox(state.canListAll ? null : firstBox());
  clearInterval(state.poller);
  state.poller = setInterval(poll, POLL_MS);
  fetchConsoleConfig();
}

async function fetchConsoleConfig() {
  try {
    const config = await (await api("console/config")).json();
    show("compose-open", Boolean(config.compose));
  } catch {
    show("compose-open", false);
  }
}

// -- mailboxes ----------------------------------------------------------------

function firstBox() {
  const first = document.querySelector("#boxes button[data-address]");
  return first ? first.dataset.address : null;
}

async function loadBoxes(more) {
  const list = $("boxes");
  if (!more) {
    list.replaceChildren();
    state.boxesCursor = null;
    try {
      await api("mails?limit=1");
      list.append(boxItem(null, "All mail"));
    } catch (error) {
      if (error.status !== 403) throw error;
      state.canListAll = false; // a scoped token lists only its own mailboxes
    }
  }
  const query = `mailboxes?limit=100${state.boxesCursor ? `&cursor=${encodeURIComponent(state.boxesCursor)}` : ""}`;
  const page = await (await api(query)).json();
  for (const box of page.mailboxes) {
    if (!list.querySelector(`button[data-address="${CSS.escape(box.address)}"]`)) list.append(boxItem(box.address, box.address));
  }
  state.boxesCursor = page.cursor;
  show("boxes-more", Boolean(page.cursor));
  markSelected();
}

function boxItem(addressValue, label) {
  const item = el("li");
  const button = el("button", label, "box");
  button.type = "button";
  if (addressValue !== null) button.dataset.address = addressValue;
  else button.dataset.all = "1";
  button.addEventListener("click", () => selectMailbox(addressValue));
  item.append(button);
  return item;
}

function markSelected() {
  for (const button of document.querySelectorAll("#boxes button")) {
    const selected = state.mailbox === null ? button.dataset.all === "1" : button.dataset.address === state.mailbox;
    button.setAttribute("aria-current", selected ? "true" : "false");
  }
}

// -- the list -----------------------------------------------------------------

function listingQuery(cursor) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (state.mailbox !== null) params.set("to", state.mailbox);
  if (state.status) params.set("status", state.status);
  if (cursor) params.set("cursor", cursor);
  return `mails?${params}`;
}

async function selectMailbox(mailbox) {
  closeMail();
  state.mailbox = mailbox;
  state.mails = [];
  state.cursor = null;
  $("list-title").textContent = mailbox === null ? "All mail" : mailbox;
  markSelected();
  await loadMails(false);
}

async function loadMails(more) {
  $("list-error").textContent = "";
  if (state.mailbox === null && !state.canListAll) {
    renderMails();
    return;
  }
  const ticket = ++state.ticket;
  try {
    const page = await (await api(listingQuery(more ? state.cursor : null))).json();
    if (ticket !== state.ticket) return; // another mailbox or filter was chosen meanwhile
    state.mails = more ? state.mails.concat(page.mails) : page.mails;
    state.cursor = page.cursor;
  } catch (error) {
    $("list-error").textContent = error.message;
  }
  renderMails();
}

async function poll() {
  if (!token() || document.hidden) return;
  if (state.mailbox === null && !state.canListAll) return;
  const ticket = state.ticket;
  try {
    const page = await (await api(listingQuery(null))).json();
    if (ticket !== state.ticket) return;
    const known = new Map(state.mails.map((mail) => [mail.id, mail]));
    const fresh = page.mails.filter((mail) => !known.has(mail.id));
    for (const mail of page.mails) if (known.has(mail.id)) Object.assign(known.get(mail.id), mail);
    state.mails = fresh.concat(state.mails);
    if (!state.mails.length) state.cursor = page.cursor;
    renderMails();
    $("live").classList.remove("stale");
    if (fresh.length) loadBoxes(false).catch(() => {});
  } catch {
    $("live").classList.add("stale");
  }
}

function visibleMails() {
  const words = $("search").value.trim().toLowerCase();
  return state.mails.filter((mail) => {
    // The server filters by status once it can; the page is filtered here too, so what is shown is always right.
    if (state.status && mail.status !== state.status) return false;
    if (!words) return true;
    return `${mail.from || ""}\n${mail.subject || ""}`.toLowerCase().includes(words);
  });
}

function renderMails() {
  const body = $("mails");
  const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.id : null;
  const rows = visibleMails().map((mail) => {
    const row = el("tr");
    row.tabIndex = 0;
    row.dataset.id = mail.id;
    row.append(
      el("td", mail.from || "(no sender)", "from"),
      el("td", mail.subject || "(no subject)", "subject"),
      el("td", when(mail.received_at), "when"),
      el("td", mail.attachments ? String(mail.attachments) : "", "count"),
    );
    const status = el("td");
    if (mail.status) status.append(el("span", mail.status, `badge ${mail.status}`));
    row.append(status);
    row.title = mail.received_at;
    row.addEventListener("click", () => openMail(mail.id));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") openMail(mail.id);
      else if (event.key === "ArrowDown" && row.nextElementSibling) row.nextElementSibling.focus();
      else if (event.key === "ArrowUp" && row.previousElementSibling) row.previousElementSibling.focus();
      else return;
      event.preventDefault();
    });
    return row;
  });
  body.replaceChildren(...rows);
  if (focusedId) {
    const again = body.querySelector(`tr[data-id="${CSS.escape(focusedId)}"]`);
    if (again) again.focus();
  }
  show("list-empty", rows.length === 0);
  show("mails-more", Boolean(state.cursor));
}

// -- one mail -----------------------------------------------------------------

async function openMail(id) {
  $("detail-error").textContent = "";
  $("retry-result").textContent = "";
  let mail;
  try {
    mail = await (await api(`mails/${encodeURIComponent(id)}`)).json();
  } catch (error) {
    $("list-error").textContent = error.message;
    return;
  }
  state.current = mail;
  state.remote = false;
  $("detail-view").dataset.id = mail.id;
  show("list-view", false);
  show("detail-view", true);
  $("detail-subject").textContent = mail.subject || "(no subject)";
  renderHeaders(mail);
  renderAttachments(mail);
  renderProcessing(mail);
  $("text-body").textContent = mail.text || "";
  const all = $("all-headers");
  all.replaceChildren(...(mail.headers || []).map(([name, value]) => pair(name, value)));
  $("raw-body").textContent = "";
  renderHtml();
  selectTab(mail.html ? "html" : "text");
  $("detail-close").focus();
}

function closeMail() {
  if (!state.current) return;
  const id = state.current.id;
  state.current = null;
  $("html-frame").removeAttribute("srcdoc");
  for (const url of state.blobUrls) URL.revokeObjectURL(url);
  state.blobUrls = [];
  show("detail-view", false);
  show("list-view", true);
  renderMails();
  const row = document.querySelector(`#mails tr[data-id="${CSS.escape(id)}"]`);
  if (row) row.focus();
}

function pair(name, value) {
  const row = el("tr");
  row.append(el("th", name), el("td", value));
  return row;
}

function renderHeaders(mail) {
  const list = $("detail-headers");
  const entries = [
    ["From", address(mail.from)],
    ["To", (mail.to || []).map(address).join(", ")],
    ["Cc", (mail.cc || []).map(address).join(", ")],
    ["Envelope", mail.envelope ? `${mail.envelope.from || ""} → ${(mail.envelope.to || []).join(", ")}` : ""],
    ["Date", mail.date || ""],
    ["Received", mail.received_at],
    ["Message-ID", mail.message_id || ""],
    ["Status", mail.processing ? mail.processing.status : "not handed to a mailbox"],
  ];
  list.replaceChildren();
  for (const [name, value] of entries) {
    if (!value) continue;
    list.append(el("dt", name), el("dd", value));
  }
}

function renderAttachments(mail) {
  const list = $("attachments");
  list.replaceChildren();
  for (const attachment of mail.attachments || []) {
    const item = el("li");
    const button = el("button", attachment.filename || `attachment-${attachment.index}`, "link");
    button.type = "button";
    button.dataset.index = String(attachment.index);
    button.addEventListener("click", () =>
      download(`mails/${encodeURIComponent(mail.id)}/attachments/${attachment.index}`,
        attachment.filename || `attachment-${attachment.index}`),
    );
    item.append(button, el("span", ` ${attachment.content_type}, ${size(attachment.size)}`, "meta"));
    list.append(item);
  }
  show("attachments-section", (mail.attachments || []).length > 0);
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function renderProcessing(mail) {
  const table = $("processing");
  table.replaceChildren();
  const processing = mail.processing;
  if (!processing) {
    table.append(pair("status", "not tracked: no handoff queue was configured when it arrived"));
  } else {
    table.append(pair("status", processing.status), pair("attempts", String(processing.attempts)));
    if (processing.error) {
      for (const [key, value] of Object.entries(processing.error)) table.append(pair(`last error: ${key}`, value));
    }
  }
  const retryable = processing && ["failed", "bounced", "processing"].includes(processing.status);
  show("retry", Boolean(retryable));
}

// The mail's HTML, in an iframe with no scripts (sandbox without allow-scripts), no
// same origin, no forms, no popups, and a policy of its own: nothing is fetched
// from anywhere until "load remote images" asks for images, and only images.
function renderHtml() {
  const mail = state.current;
  const has = Boolean(mail && mail.html);
  show("html-frame", has);
  show("html-empty", !has);
  show("remote-notice", has && !state.remote);
  if (!has) return;
  const policy = state.remote
    ? "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:"
    : "default-src 'none'; style-src 'unsafe-inline'; img-src data:";
  const meta = `<meta http-equiv="Content-Security-Policy" content="${policy}">`;
  // A new frame for each rendering: nothing one mail's document did carries over to the next.
  const frame = $("html-frame").cloneNode(false);
  frame.removeAttribute("srcdoc");
  frame.srcdoc = `<!doctype html>${meta}<meta name="referrer" content="no-referrer">${mail.html}`;
  $("html-frame").replaceWith(frame);
}

async function showRaw() {
  const mail = state.current;
  if (!mail || $("raw-body").dataset.id === mail.id) return;
  try {
    const blob = await (await api(`mails/${encodeURIComponent(mail.id)}/eml`)).blob();
    // Up to a megabyte shown; the whole is one click away as a download.
    const text = await blob.slice(0, 1024 * 1024).text();
    $("raw-body").textContent = blob.size > 1024 * 1024 ? `${text}\n… (${size(blob.size)}: download the .eml for all of it)` : text;
    $("raw-body").dataset.id = mail.id;
  } catch (error) {
    $("raw-body").textContent = error.message;
  }
}

// The API needs the bearer token, so a plain link cannot download: fetched
// with the header, handed to the browser as a blob URL.
async function download(path, name) {
  $("detail-error").textContent = "";
  try {
    const blob = await (await api(path)).blob();
    const url = URL.createObjectURL(blob);
    state.blobUrls.push(url);
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.rel = "noopener";
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    $("detail-error").textContent = error.message;
  }
}

async function retry() {
  const mail = state.current;
  if (!mail) return;
  $("retry-result").textContent = "";
  try {
    const answer = await (await api(`mails/${encodeURIComponent(mail.id)}/retry`, { method: "POST" })).json();
    $("retry-result").textContent = `Sent back to its handler: ${answer.status}.`;
    const fresh = await (await api(`mails/${encodeURIComponent(mail.id)}`)).json();
    if (state.current && state.current.id === fresh.id) {
      state.current = fresh;
      renderHeaders(fresh);
      renderProcessing(fresh);
    }
  } catch (error) {
    $("retry-result").textContent = error.message;
  }
}

function selectTab(name) {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", selected ? "true" : "false");
    tab.tabIndex = selected ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  if (name === "raw") showRaw();
}

// -- compose ------------------------------------------------------------------

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  }
  return btoa(binary);
}

async function sendComposed(event) {
  event.preventDefault();
  $("compose-error").textContent = "";
  const files = await Promise.all(
    Array.from($("c-files").files).map(async (file) => ({
      filename: file.name,
      content_type: file.type || "application/octet-stream",
      data: base64(await file.arrayBuffer()),
    })),
  );
  const body = {
    from: $("c-from").value.trim(),
    to: $("c-to").value.split(",").map((value) => value.trim()).filter(Boolean),
    subject: $("c-subject").value,
    text: $("c-text").value,
    html: $("c-html").value,
    attachments: files,
  };
  try {
    const answer = await (await api("console/compose", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    })).json();
    $("compose").close();
    $("compose-form").reset();
    await poll();
    await openMail(answer.id);
  } catch (error) {
    $("compose-error").textContent = error.message;
  }
}

// -- wiring -------------------------------------------------------------------

function wire() {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", () => signOut(""));
  $("boxes-more").addEventListener("click", () => loadBoxes(true));
  $("mails-more").addEventListener("click", () => loadMails(true));
  $("search").addEventListener("input", renderMails);
  $("status-filter").addEventListener("change", () => {
    state.status = $("status-filter").value;
    selectMailbox(state.mailbox);
  });
  $("detail-close").addEventListener("click", closeMail);
  $("download-eml").addEventListener("click", () =>
    download(`mails/${encodeURIComponent(state.current.id)}/eml`, `${state.current.id}.eml`));
  $("download-raw").addEventListener("click", () =>
    download(`mails/${encodeURIComponent(state.current.id)}/raw`, `${state.current.id}.bin`));
  $("retry").addEventListener("click", retry);
  $("load-remote").addEventListener("click", () => {
    state.remote = true;
    renderHtml();
  });
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab.id.slice(4)));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      selectTab(next.id.slice(4));
      next.focus();
      event.preventDefault();
    });
  }
  $("compose-open").addEventListener("click", () => {
    $("compose-error").textContent = "";
    if (state.mailbox) $("c-to").value = state.mailbox;
    $("compose").showModal();
    $("c-from").focus();
  });
  $("compose-cancel").addEventListener("click", () => $("compose").close());
  $("compose-form").addEventListener("submit", sendComposed);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.current && !$("compose").open) {
      closeMail();
      event.preventDefault();
    } else if (event.key === "/" && document.activeElement.tagName !== "INPUT" &&
      document.activeElement.tagName !== "TEXTAREA" && !$("app-view").hidden && !state.current) {
      $("search").focus();
      event.preventDefault();
    }
  });
}

wire();
if (token()) {
  start().catch((error) => signOut(error.message));
} else {
  signOut("");
}
