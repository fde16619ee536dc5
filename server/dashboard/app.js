/* TillTap dashboard: one page, hash routes, data from /api/v1 with the session cookie.
   Everything is built with textContent (receipt text is untrusted input from shops). */
"use strict";

var PAGES = ["overview", "fleet", "receipts", "customers", "reports"];
var $ = function (id) { return document.getElementById(id); };

function NotLoggedIn() {}

/* fetch JSON; a 401 shows the login page. The header tells the server not to send a Basic
   challenge, so the browser shows our form instead of its own dialog. */
function api(path, options) {
  options = options || {};
  options.headers = Object.assign({"X-TillTap-Dashboard": "1"}, options.headers || {});
  options.credentials = "same-origin";
  return fetch(path, options).then(function (response) {
    if (response.status === 401) { show("login"); throw new NotLoggedIn(); }
    return response.json().then(function (body) {
      if (!response.ok) { throw new Error(body.detail || response.statusText); }
      return body;
    });
  });
}

function isoDay(date) { return date.toISOString().slice(0, 10); }
function daysAgo(n) { var d = new Date(); d.setDate(d.getDate() - n); return isoDay(d); }
function isNumber(v) { return typeof v === "number" || (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v)); }

/* A table of rows (objects); onClick(row) makes rows clickable. */
function table(container, rows, onClick) {
  if (!rows.length) { container.textContent = "Nothing found."; return; }
  var t = document.createElement("table");
  var head = t.createTHead().insertRow();
  Object.keys(rows[0]).forEach(function (k) {
    var th = document.createElement("th"); th.textContent = k; head.appendChild(th);
  });
  var body = t.createTBody();
  rows.forEach(function (row) {
    var tr = body.insertRow();
    Object.keys(rows[0]).forEach(function (k) {
      var td = tr.insertCell(), v = row[k];
      td.textContent = v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : v);
      if (isNumber(v)) { td.className = "num"; }
    });
    if (onClick) { tr.className = "clickable"; tr.addEventListener("click", function () { onClick(row); }); }
  });
  container.replaceChildren(t);
}

function show(page) {
  document.querySelectorAll(".page").forEach(function (s) { s.hidden = s.id !== page; });
  $("nav").hidden = page === "login";
}

function route() {
  var page = location.hash.slice(1) || "overview";
  if (PAGES.indexOf(page) < 0) { page = "overview"; }
  show(page);
  LOADERS[page]().catch(function (e) { if (!(e instanceof NotLoggedIn)) { alert(e.message); } });
}

var LOADERS = {
  overview: function () {
    var today = isoDay(new Date());
    $("today-date").textContent = today;
    return Promise.all([
      api("/api/v1/reports/sales_by_day?from=" + daysAgo(29) + "&to=" + today),
      api("/api/v1/reports/silent_printers"),
    ]).then(function (answers) {
      var perDay = {}, rows = answers[0].rows;
      rows.forEach(function (r) { perDay[r.day] = (perDay[r.day] || 0) + Number(r.sales || 0); });
      var todays = rows.filter(function (r) { return r.day === today; });
      $("today-sales").textContent = todays.reduce(function (s, r) { return s + Number(r.sales || 0); }, 0).toFixed(2);
      $("today-receipts").textContent = todays.reduce(function (s, r) { return s + r.receipts; }, 0);
      $("silent-count").textContent = answers[1].rows.length;
      var days = [];
      for (var i = 29; i >= 0; i--) { days.push(daysAgo(i)); }
      barChart($("sales-chart"), days.map(function (d) { return d.slice(5); }),
               days.map(function (d) { return perDay[d] || 0; }), {title: "sales per day"});
    });
  },

  fleet: function () {
    return api("/api/v1/reports/fleet").then(function (body) {
      var stale = Date.now() - 24 * 3600 * 1000;
      table($("fleet-table"), body.rows.map(function (r) {
        return {device: r.device_id, store: r.store, receipts: r.receipts,
                last_receipt: r.last_receipt_at, last_seen: r.telemetry_at,
                spool_backlog: r.spool_backlog, dropped: r.dropped,
                not_extracted: r.extraction_errors, text_replaced: r.text_replaced,
                // records the server refused, kept set aside on the tap until an operator
                // runs `tilltap devices retry-refused ID`
                refused: r.refused ? r.refused + (r.retry_pending ? " (retry asked)" : "") :
                         r.refused,
                firmware: r.firmware,
                printer: printerText(r.printer),
                status: r.revoked_at ? "revoked" :
                        (!r.last_receipt_at || Date.parse(r.last_receipt_at) < stale ? "SILENT" : "ok")};
      }));
      $("fleet-table").querySelectorAll("td").forEach(function (td) {
        if (td.textContent === "SILENT" || td.textContent.indexOf("UNREACHABLE") === 0) {
          td.className = "stale";
        }
      });
    });
  },

  receipts: function () { return searchReceipts(); },

  customers: function () { return searchCustomers(); },

  reports: function () {
    if ($("report-name").options.length) { return showReport(); }
    return api("/api/v1/reports").then(function (body) {
      body.reports.forEach(function (name) {
        var o = document.createElement("option"); o.value = o.textContent = name;
        $("report-name").appendChild(o);
      });
      $("report-name").value = "sales_by_day";
      return showReport();
    });
  },
};

function query(pairs) {
  var q = new URLSearchParams();
  Object.keys(pairs).forEach(function (k) { if (pairs[k]) { q.set(k, pairs[k]); } });
  return q.toString();
}

function searchReceipts() {
  var q = query({q: $("receipt-q").value, device: $("receipt-device").value,
                 from: $("receipt-from").value, to: $("receipt-to").value});
  return api("/api/v1/receipts?" + q).then(function (body) {
    table($("receipt-results"), body.receipts.map(function (r) {
      return {device: r.device_id, seq: r.seq, store: r.store, receipt_no: r.receipt_no,
              date: r.receipt_dt, total: r.total, currency: r.currency, items: r.item_count,
              payment: r.payment_types, member: r.member_id,
              flags: statusText(r) + (r.refund ? "refund " : "") + (r.void ? "void" : "")};
    }), function (row) { showReceipt(row.device, row.seq); });
  });
}

/* The printer side as the tap's last telemetry reported it. */
function printerText(p) {
  if (!p) { return ""; }
  if (p.reachable === false) { return "UNREACHABLE: " + (p.error || "?"); }
  var notes = [];
  if (p.not_printed) { notes.push(p.not_printed + " not printed"); }
  if (p.incomplete) { notes.push(p.incomplete + " incomplete"); }
  return notes.length ? "ok, " + notes.join(", ") : "ok";
}

/* "not printed", "incomplete (cut_in_payload)": receipts the sales reports leave out. */
function statusText(r) {
  if (!r.status || r.status === "complete") { return ""; }
  return r.status.replace("_", " ") + (r.reason ? " (" + r.reason + ")" : "") + " ";
}

var STATUS_NOTES = {
  not_printed: "Not printed: the printer failed before it printed this receipt. Kept, not counted as a sale.",
  incomplete: "Captured in part: the stream ended or the tap fell behind inside it. Kept, not counted as a sale.",
};

/* The receipt as printed (monospace text, one clickable span per line) next to what was
   extracted from it, and the layout template builder for its printer. */
function showReceipt(device, seq) {
  return api("/api/v1/receipts/" + encodeURIComponent(device) + "/" + seq).then(function (r) {
    var box = $("receipt-detail"), pre = document.createElement("pre");
    pre.className = "receipt";
    r.lines.forEach(function (l, i) {
      var span = document.createElement("span");
      span.className = "rline";
      span.dataset.index = i;
      span.textContent = l;
      if (l !== null) { span.addEventListener("mouseup", function () { pickLine(i); }); }
      pre.appendChild(span);
      if (i < r.lines.length - 1) { pre.appendChild(document.createTextNode("\n")); }
    });
    var facts = document.createElement("div");
    facts.id = "receipt-facts";
    table(facts, [{store: r.store, receipt_no: r.receipt_no, date: r.receipt_dt, total: r.total,
                   currency: r.currency, member: r.member_id, customer: r.customer_id}]);
    var items = document.createElement("div");
    table(items, r.items.map(function (i) {
      return {name: i.name, qty: i.qty, unit_price: i.unit_price, amount: i.amount};
    }));
    var parts = [pre, facts, items, builderPanel()];
    if (r.ocr) {
      parts.unshift(el("p", {className: "note", textContent: "Printed as an image: text read by OCR."}));
    }
    if (STATUS_NOTES[r.status]) {
      parts.unshift(el("p", {className: "note status", textContent: STATUS_NOTES[r.status] +
                                                                     (r.reason ? " (" + r.reason + ")" : "")}));
    }
    box.replaceChildren.apply(box, parts);
    return startBuilder(device, seq, r.lines);
  });
}

/* ---- layout template builder ----------------------------------------------------------------
   Click a line of the receipt (or select the value part of it), pick a field, "Add rule": the
   rule goes into the draft template (JSON, as extract.load_template accepts it), which is run on
   this receipt by POST /api/v1/templates/{device}/test; "Save template" stores it (PUT), and the
   server re-extracts the printer's receipts. */
var TEMPLATE_FIELDS = ["total", "subtotal", "tax", "tendered", "change", "receipt_no", "datetime",
                       "member_id", "store", "cashier", "register", "currency"];
var AMOUNT_FIELDS = ["total", "subtotal", "tax", "tendered", "change"];
var builder = null;

function el(tag, props, children) {
  var e = document.createElement(tag);
  Object.keys(props || {}).forEach(function (k) { e[k] = props[k]; });
  (children || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
  return e;
}

function builderPanel() {
  var select = el("select", {id: "tpl-field"});
  TEMPLATE_FIELDS.forEach(function (f) { select.appendChild(el("option", {value: f, textContent: f})); });
  return el("div", {id: "template-builder", className: "builder"}, [
    el("h2", {textContent: "Layout template for this printer"}),
    el("p", {className: "hint", textContent: "Click a receipt line (or select its value), pick the field, add the rule."}),
    el("div", {className: "filters"}, [
      el("label", {}, ["line ", el("input", {id: "tpl-line", readOnly: true, size: 4})]),
      el("label", {}, ["value ", el("input", {id: "tpl-value", size: 24})]),
      el("label", {}, ["field ", select]),
      el("button", {id: "tpl-add", type: "button", textContent: "Add rule"}),
    ]),
    el("textarea", {id: "tpl-json", rows: 8, spellcheck: false}),
    el("div", {className: "filters"}, [
      el("button", {id: "tpl-test", type: "button", textContent: "Test on this receipt"}),
      el("button", {id: "tpl-save", type: "button", textContent: "Save template"}),
      el("span", {id: "tpl-status"}),
    ]),
    el("div", {id: "tpl-result"}),
  ]);
}

function startBuilder(device, seq, lines) {
  builder = {device: device, seq: seq, lines: lines, line: null, start: 0, end: 0};
  $("tpl-add").addEventListener("click", addRule);
  $("tpl-test").addEventListener("click", function () { testTemplate(); });
  $("tpl-save").addEventListener("click", saveTemplate);
  $("tpl-value").addEventListener("input", function () {
    if (builder.line === null) { return; }
    var text = builder.lines[builder.line], at = text.lastIndexOf($("tpl-value").value);
    builder.start = at < 0 ? 0 : at;
    builder.end = at < 0 ? text.length : at + $("tpl-value").value.length;
  });
  return api("/api/v1/templates/" + encodeURIComponent(device)).then(function (body) {
    setDraft(body.template);
    $("tpl-status").textContent = "stored template loaded";
  }, function (e) {
    if (e instanceof NotLoggedIn) { throw e; }
    setDraft({fields: {}});  // 404: none stored yet
  });
}

function setDraft(template) { $("tpl-json").value = JSON.stringify(template, null, 2); }

function draft() {
  var t = JSON.parse($("tpl-json").value || "{}");
  if (!t.fields) { t.fields = {}; }
  return t;
}

/* The value part of a line: the selection inside it, else its last number (or the text after
   a label, or the whole line). */
function pickLine(index) {
  var text = builder.lines[index], start = 0, end = text.length;
  var sel = window.getSelection(), span = document.querySelector('.rline[data-index="' + index + '"]');
  if (sel && !sel.isCollapsed && span.contains(sel.anchorNode) && span.contains(sel.focusNode)) {
    start = Math.min(sel.anchorOffset, sel.focusOffset);
    end = Math.max(sel.anchorOffset, sel.focusOffset);
  } else {
    var m = /[:：]\s+(\S.*?)\s*$/.exec(text) || /-?\d[\d.,]*\S*\s*$/.exec(text);
    if (m) {
      var value = m[1] || m[0].trim();
      start = text.lastIndexOf(value); end = start + value.length;
    }
  }
  builder.line = index; builder.start = start; builder.end = end;
  document.querySelectorAll(".rline.picked").forEach(function (s) { s.classList.remove("picked"); });
  span.classList.add("picked");
  $("tpl-line").value = index;
  $("tpl-value").value = text.slice(start, end);
  var guess = guessField(text);
  if (guess) { $("tpl-field").value = guess; }
}

function guessField(text) {
  var t = text.toLowerCase();
  if (/sub\s*total|zwischensumme/.test(t)) { return "subtotal"; }
  if (/total|summe|sum\b|betrag/.test(t)) { return "total"; }
  if (/receipt|beleg|bon\b|no[.:]/.test(t)) { return "receipt_no"; }
  if (/\d{1,4}[-./]\d{1,2}[-./]\d{1,4}/.test(t)) { return "datetime"; }
  if (/member|loyalty|kunde/.test(t)) { return "member_id"; }
  if (/cashier|kassierer|bediente/.test(t)) { return "cashier"; }
  if (/tax|vat|mwst|ust/.test(t)) { return "tax"; }
  return null;
}

function reEscape(text) { return text.replace(/[.*+?^${}()|[\]\\\/]/g, "\\$&"); }
function reText(text) { return text.trim().split(/\s+/).map(reEscape).join("\\s+"); }

/* A field rule for the picked line and value: a pattern on the text before the value (its
   label) when there is one, else the line's index with the value's columns. */
function ruleFor(field) {
  var text = builder.lines[builder.line], label = text.slice(0, builder.start).trim();
  var rest = text.slice(builder.end).trim(), value = text.slice(builder.start, builder.end).trim();
  if (!label) {
    var rule = {line: builder.line};
    if (builder.start > 0 || builder.end < text.length) { rule.columns = [builder.start, builder.end]; }
    return rule;
  }
  var group = AMOUNT_FIELDS.indexOf(field) >= 0 && !/\s/.test(value) ? "\\S+" : ".+?";
  return {pattern: "^\\s*" + reText(label) + "\\s*(?P<value>" + group + ")" +
                   (rest ? "\\s+" + reText(rest) : "") + "\\s*$"};
}

function addRule() {
  if (builder.line === null) { $("tpl-status").textContent = "click a receipt line first"; return; }
  var t;
  try { t = draft(); } catch (e) { $("tpl-status").textContent = "template is not JSON: " + e.message; return; }
  var field = $("tpl-field").value;
  t.fields[field] = ruleFor(field);
  setDraft(t);
  return testTemplate();
}

function testTemplate() {
  var t;
  try { t = draft(); } catch (e) { $("tpl-status").textContent = "template is not JSON: " + e.message; return Promise.resolve(); }
  $("tpl-status").textContent = "testing...";
  return api("/api/v1/templates/" + encodeURIComponent(builder.device) + "/test", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({template: t, seq: builder.seq}),
  }).then(function (body) {
    var rows = Object.keys(body.template).filter(function (k) { return k !== "items"; }).map(function (k) {
      return {field: k, template_finds: body.template[k], receipt_field: body.fields[k]};
    });
    table($("tpl-result"), rows);
    $("tpl-status").textContent = "tested";
  }, function (e) {
    if (e instanceof NotLoggedIn) { throw e; }
    $("tpl-status").textContent = "error: " + e.message;
  });
}

function saveTemplate() {
  var t;
  try { t = draft(); } catch (e) { $("tpl-status").textContent = "template is not JSON: " + e.message; return; }
  var device = builder.device, seq = builder.seq;
  api("/api/v1/templates/" + encodeURIComponent(device), {
    method: "PUT", headers: {"Content-Type": "application/json"}, body: JSON.stringify(t),
  }).then(function () {
    $("tpl-status").textContent = "saved; re-extracting this printer's receipts";
    // the server re-extracts in the background: show the receipt again shortly after
    setTimeout(function () {
      showReceipt(device, seq).then(function () { $("tpl-status").textContent = "saved"; });
    }, 800);
  }, function (e) {
    if (e instanceof NotLoggedIn) { throw e; }
    $("tpl-status").textContent = "error: " + e.message;
  });
}

function searchCustomers() {
  return api("/api/v1/customers?" + query({q: $("customer-q").value})).then(function (body) {
    table($("customer-table"), body.customers.map(function (c) {
      return {member_id: c.member_id, name: c.name, phone: c.phone, email: c.email,
              visits: c.visits, spend: c.spend, last_visit: c.last_visit,
              attributes: c.attributes};
    }));
  });
}

function reportQuery() {
  return query({from: $("report-from").value, to: $("report-to").value, store: $("report-store").value});
}

/* The report as a table, and as a bar chart of its first money or count column. */
function showReport() {
  var name = $("report-name").value, q = reportQuery();
  $("report-csv").href = "/api/v1/reports/" + name + "?" + q + (q ? "&" : "") + "format=csv";
  return api("/api/v1/reports/" + name + "?" + q).then(function (body) {
    table($("report-table"), body.rows);
    var rows = body.rows, keys = rows.length ? Object.keys(rows[0]) : [];
    var measure = ["sales", "amount", "spend", "monetary", "missing", "customers", "receipts",
                   "new_customers", "payments"].filter(function (k) { return keys.indexOf(k) >= 0; })[0];
    if (!measure) { $("report-chart").replaceChildren(); return; }
    barChart($("report-chart"), rows.map(function (r) {
      return keys.slice(0, 2).filter(function (k) { return k !== measure; })
                 .map(function (k) { return r[k]; }).join(" ");
    }), rows.map(function (r) { return Number(r[measure] || 0); }), {title: name});
  });
}

$("login-form").addEventListener("submit", function (event) {
  event.preventDefault();
  $("login-error").textContent = "";
  fetch("/api/v1/login", {method: "POST", headers: {"Content-Type": "application/json"},
                          body: JSON.stringify({username: $("username").value, password: $("password").value})})
    .then(function (response) {
      if (!response.ok) { $("login-error").textContent = "Wrong username or password."; return; }
      $("password").value = "";
      route();
    });
});

$("logout").addEventListener("click", function () {
  api("/api/v1/logout", {method: "POST"}).then(function () { show("login"); });
});

$("receipt-search").addEventListener("submit", function (e) { e.preventDefault(); searchReceipts(); });
$("customer-search").addEventListener("submit", function (e) { e.preventDefault(); searchCustomers(); });
$("report-form").addEventListener("submit", function (e) { e.preventDefault(); showReport(); });
$("customer-import").addEventListener("submit", function (e) {
  e.preventDefault();
  var file = $("customer-file").files[0];
  if (!file) { return; }
  var form = new FormData();
  form.append("file", file);
  api("/api/v1/customers/import", {method: "POST", body: form}).then(function (body) {
    $("import-result").textContent = body.imported + " imported, " + body.errors.length + " errors" +
      body.errors.map(function (e) { return "; row " + e.row + ": " + e.error; }).join("");
    return searchCustomers();
  });
});

window.addEventListener("hashchange", route);
route();
