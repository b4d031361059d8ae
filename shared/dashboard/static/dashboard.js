/* The dashboard's script. Every figure it shows is read from this app's HTTP API
 * (/api/...), with the function key the page was opened with (?code=) sent on as the
 * x-functions-key header. Charts: Chart.js (window.Chart), loaded before this file.
 * No framework: views build DOM nodes with textContent, never HTML from the API. */
(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var KEY = params.get("code");
  var API = location.pathname.replace(/\/+$/, "").replace(/\/dashboard$/, "");
  var REFRESH_SECONDS = params.has("refresh") ? Number(params.get("refresh")) : 30;
  var view = document.getElementById("view");
  var charts = [];
  var lastRender = null; // {route, fingerprint}
  var busy = 0; // actions in flight: no automatic refresh meanwhile

  // ------------------------------------------------------------------------- helpers

  function h(tag, props) {
    var node = document.createElement(tag);
    var children = Array.prototype.slice.call(arguments, 2);
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
        else if (k === "dataset") Object.keys(v).forEach(function (d) { node.dataset[d] = v[d]; });
        else node.setAttribute(k, v === true ? "" : v);
      });
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      if (Array.isArray(c)) append(node, c);
      else node.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
  }

  function ApiProblem(status, body) {
    this.status = status;
    this.body = body || {};
    this.message = (body && (body.detail || body.title)) || ("HTTP " + status);
  }

  function api(path, options) {
    options = options || {};
    var headers = { "Accept": "application/json" };
    if (KEY) headers["x-functions-key"] = KEY;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(API + path, {
      method: options.method || "GET", headers: headers, cache: "no-store", credentials: "same-origin",
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined
    }).then(function (r) {
      return r.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = { detail: text.slice(0, 300) }; }
        if (!r.ok) {
          // The app's own refusals (a role too low, nobody signed in) say why; the host's say nothing.
          var own = body && typeof body.type === "string" && /:(forbidden|unauthenticated)$/.test(body.type);
          if ((r.status === 401 || r.status === 403) && !own) {
            body = { detail: "The API answered " + r.status + ": open this page with the function key, " +
              "as " + location.pathname + "?code=<function key>" + (KEY ? " (the key given was refused)" : "") };
          }
          throw new ApiProblem(r.status, body);
        }
        return body;
      });
    });
  }

  function enc(s) { return encodeURIComponent(s); }
  function link(href, text) { return h("a", { href: href, text: text }); }
  function datasetHref(name) { return "#/datasets/" + enc(name); }
  function jobHref(id) { return "#/jobs/" + enc(id); }
  function deploymentHref(name) { return "#/deployments/" + enc(name); }

  function fmtNum(v, digits) {
    if (v === null || v === undefined || v === "") return "–";
    if (typeof v !== "number") return String(v);
    if (digits !== undefined) return v.toLocaleString("en", { maximumFractionDigits: digits });
    return Math.abs(v) < 1000 && !Number.isInteger(v) ? String(Number(v.toPrecision(4))) : v.toLocaleString("en");
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    var units = ["B", "KB", "MB", "GB"];
    var i = 0;
    var v = n;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(v)) + " " + units[i] + (i ? " (" + n.toLocaleString("en") + " bytes)" : "");
  }

  function parseTime(s) { var t = s ? Date.parse(s) : NaN; return isNaN(t) ? null : t; }

  function ago(ms) {
    var s = Math.round(ms / 1000);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    if (s < 86400 * 2) return (s / 3600).toFixed(1) + " h";
    return Math.round(s / 86400) + " days";
  }

  function fmtTime(s) {
    var t = parseTime(s);
    if (t === null) return s ? String(s) : "–";
    var d = new Date(t);
    var rel = Date.now() - t;
    var text = d.toLocaleString("en-GB", { year: "numeric", month: "short", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit" });
    return text + " (" + (rel >= 0 ? ago(rel) + " ago" : "in " + ago(-rel)) + ")";
  }

  function time(s) { return h("time", { datetime: s || null, title: s || null, text: fmtTime(s) }); }

  function countdownText(ms) {
    var past = ms < 0;
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), mm = Math.floor((s % 3600) / 60);
    var text = d + " d " + hh + " h " + mm + " min " + (s % 60) + " s";
    return past ? "passed " + text + " ago" : text;
  }

  function countdown(deadline) {
    if (!deadline) return h("span", { class: "muted", text: "–" });
    return h("span", { class: "countdown", dataset: { deadline: deadline }, title: deadline });
  }

  function tickCountdowns() {
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var t = parseTime(el.dataset.deadline);
      if (t === null) { el.textContent = el.dataset.deadline; return; }
      var left = t - Date.now();
      el.textContent = countdownText(left);
      el.classList.toggle("past", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 2 * 86400 * 1000);
    });
  }

  var STATUS_TONE = {
    ready: "ok", succeeded: "ok", deployed: "ok", active: "ok", restored: "ok",
    rejected: "bad", upload_failed: "bad", failed: "bad", cancelled: "warn", gate_failed: "bad", deploy_failed: "bad",
    deploy_blocked: "warn", expired: "bad", missing: "warn", paused: "warn", waiting: "warn"
  };

  function badge(status) {
    return h("span", { class: "badge " + (STATUS_TONE[status] || ""), text: status || "–" });
  }

  function facts(pairs) {
    var dl = h("dl", { class: "facts" });
    pairs.forEach(function (p) {
      if (!p) return;
      dl.appendChild(h("dt", { text: p[0] }));
      dl.appendChild(h("dd", null, p[1] === null || p[1] === undefined || p[1] === "" ? "–" : p[1]));
    });
    return dl;
  }

  function table(columns, rows, empty, extraClass) {
    if (!rows.length) return h("p", { class: "muted", text: empty || "None." });
    var head = h("tr", null, columns.map(function (c) { return h("th", { class: c.num ? "num" : null, text: c.label }); }));
    var body = rows.map(function (r) {
      return h("tr", null, columns.map(function (c) {
        var v = c.value(r);
        return h("td", { class: c.num ? "num" : null, "data-label": c.label },
          h("span", { class: "value" }, v === null || v === undefined || v === "" ? "–" : v));
      }));
    });
    return h("div", { class: "table-wrap" },
      h("table", { class: "cards " + (extraClass || "") }, h("thead", null, head), h("tbody", null, body)));
  }

  function box(tone, children) { return h("div", { class: "box " + tone, role: tone === "bad" ? "alert" : null }, children); }

  function notice(text, tone) {
    var el = document.getElementById("notice");
    if (!text) { el.hidden = true; return; }
    el.hidden = false;
    el.className = "box " + (tone || "ok");
    el.textContent = text;
  }

  function errorView(err) {
    return box("bad", [h("strong", { text: "Could not read the API: " }), err && err.message ? err.message : String(err)]);
  }

  function figures(obj) {
    return h("span", { class: "figures" }, Object.keys(obj).filter(function (k) { return k !== "step"; }).map(function (k) {
      return h("span", { class: "figure" }, h("span", { class: "muted", text: k + " " }), fmtNum(obj[k]));
    }));
  }

  function moreAfter(n, items, draw, what) {
    if (items.length <= n) return draw(items);
    return [draw(items.slice(0, n)), h("details", null, h("summary", { text: (items.length - n) + " more " + what }), draw(items.slice(n)))];
  }

  function json(v) { return h("code", { text: typeof v === "string" ? v : JSON.stringify(v) }); }

  // ---------------------------------------------------------------------- API reads

  var codesPromise = null;
  function validationCodes() {
    if (!codesPromise) {
      codesPromise = api("/validation-codes").then(function (b) { return b.codes || {}; }, function () {
        codesPromise = null;
        return {};
      });
    }
    return codesPromise;
  }

  function allPages(path, limit) {
    var items = [];
    function next(token, pages) {
      var sep = path.indexOf("?") >= 0 ? "&" : "?";
      return api(path + sep + "limit=100" + (token ? "&continuation=" + enc(token) : "")).then(function (page) {
        items = items.concat(page.items || []);
        if (page.next && pages < (limit || 5)) return next(page.next, pages + 1);
        return { items: items, more: !!page.next };
      });
    }
    return next(null, 1);
  }

  // ----------------------------------------------------------------------- lists

  function datasetsTable(items) {
    return table([
      { label: "Dataset", value: function (d) { return link(datasetHref(d.name), d.name); } },
      { label: "Status", value: function (d) { return badge(d.status); } },
      { label: "Model", value: function (d) { return d.base_model; } },
      { label: "Method", value: function (d) { return d.method; } },
      { label: "Size", num: true, value: function (d) { return d.size === null || d.size === undefined ? null : fmtBytes(d.size).split(" (")[0]; } },
      { label: "Examples", num: true, value: function (d) { return fmtNum(d.examples); } },
      { label: "Errors", num: true, value: function (d) { return fmtNum(d.error_count); } },
      { label: "Warnings", num: true, value: function (d) { return fmtNum(d.warning_count); } },
      { label: "Updated", value: function (d) { return time(d.updated_at || d.created_at); } }
    ], items, "No datasets yet: drop a JSONL file into the datasets container.", "datasets");
  }

  function jobsTable(items) {
    return table([
      { label: "Job", value: function (j) { return link(jobHref(j.id), j.id); } },
      { label: "Status", value: function (j) { return badge(j.status); } },
      { label: "Method", value: function (j) { return j.method; } },
      { label: "Base model", value: function (j) { return j.base_model; } },
      { label: "Training data", value: function (j) { return j.training_dataset ? j.training_dataset.split("@")[0] : null; } },
      { label: "Deployment", value: function (j) { return j.deployment_name ? link(deploymentHref(j.deployment_name), j.deployment_name) : null; } },
      { label: "Created", value: function (j) { return time(j.created_at); } }
    ], items, "No jobs yet: start one with POST /api/jobs.", "jobs");
  }

  function deploymentsTable(items) {
    return table([
      { label: "Deployment", value: function (d) { return link(deploymentHref(d.name), d.name); } },
      { label: "State", value: function (d) { return badge(d.state); } },
      { label: "Keep-alive", value: function (d) { return d.keep_alive; } },
      { label: "Idle deadline in", value: function (d) { return countdown(d.idle_deadline); } },
      { label: "Last activity", value: function (d) { return time(d.last_activity); } },
      { label: "Hosting hours", num: true, value: function (d) { return fmtNum(d.hosting_hours, 2); } },
      { label: "Est. cost (USD)", num: true, value: function (d) { return fmtNum(d.estimated_cost_usd, 2); } }
    ], items, "No deployments yet: a job that succeeds is deployed by the monitor.", "deployments");
  }

  var views = {};

  views.home = {
    title: "Overview",
    load: function () {
      return Promise.all([api("/datasets?limit=20"), api("/jobs?limit=20"), api("/deployments")]);
    },
    draw: function (d) {
      return [
        h("h1", { text: "Overview" }),
        h("section", null, h("h2", null, link("#/datasets", "Datasets")), datasetsTable(d[0].items || [])),
        h("section", null, h("h2", null, link("#/jobs", "Jobs")), jobsTable(d[1].items || [])),
        h("section", null, h("h2", null, link("#/deployments", "Deployments")), deploymentsTable(d[2].items || []))
      ];
    }
  };

  views.datasets = {
    title: "Datasets",
    load: function () { return allPages("/datasets"); },
    draw: function (d) {
      return [h("h1", { text: "Datasets" }), datasetsTable(d.items),
        d.more ? h("p", { class: "muted", text: "Only the first 500 are shown." }) : null];
    }
  };

  views.jobs = {
    title: "Jobs",
    load: function () { return allPages("/jobs"); },
    draw: function (d) {
      return [h("h1", { text: "Jobs" }), jobsTable(d.items),
        d.more ? h("p", { class: "muted", text: "Only the newest 500 are shown." }) : null];
    }
  };

  views.deployments = {
    title: "Deployments",
    load: function () { return api("/deployments"); },
    draw: function (d) { return [h("h1", { text: "Deployments" }), deploymentsTable(d.items || [])]; }
  };

  // --------------------------------------------------------------------- a dataset

  // "line 5: the example ..." under "Line 5:" reads twice: the label says it once.
  function stripLine(message, line) {
    var prefix = "line " + line + ": ";
    return line !== null && line !== undefined && message.toLowerCase().indexOf(prefix) === 0 ? message.slice(prefix.length) : message;
  }

  function issueGroups(items, counts, codes, severity) {
    var byCode = {};
    var order = [];
    (items || []).forEach(function (it) {
      var code = it.code || "unknown";
      if (!byCode[code]) { byCode[code] = []; order.push(code); }
      byCode[code].push(it);
    });
    Object.keys(counts || {}).forEach(function (code) { if (!byCode[code]) { byCode[code] = []; order.push(code); } });
    return order.map(function (code) {
      var info = codes[code] || {};
      var shown = byCode[code];
      var total = counts && counts[code] !== undefined ? counts[code] : shown.length;
      var noun = severity === "warning" ? "warning" : "error";
      return h("div", { class: "issue " + severity, dataset: { code: code } },
        h("h3", null, h("code", { text: code }), " · " + total + " " + noun + (total === 1 ? "" : "s")),
        info.meaning ? h("div", { class: "meaning", text: info.meaning }) : null,
        info.fix ? h("div", { class: "fix" }, h("strong", { text: "How to fix: " }), info.fix) : null,
        h("ul", null, shown.map(function (it) {
          return h("li", { dataset: { line: it.line === null || it.line === undefined ? "" : String(it.line) } },
            it.line !== null && it.line !== undefined ? h("span", { class: "line", text: "Line " + it.line + ": " })
              : h("span", { class: "line", text: "Whole file: " }),
            stripLine(it.message || "", it.line));
        })),
        total > shown.length ? h("p", { class: "muted", text: (total - shown.length) + " more not listed (the report keeps the first 100 of each kind)." }) : null);
    });
  }

  views.dataset = {
    title: "Dataset",
    load: function (name) {
      return Promise.all([api("/datasets/" + enc(name)), validationCodes()]);
    },
    draw: function (d) {
      var ds = d[0], codes = d[1], report = ds.report || {};
      var stats = report.stats || {};
      var errors = report.errors || ds.errors || [];
      var warnings = report.warnings || [];
      var out = [h("h1", { text: ds.name }), h("p", null, badge(ds.status), " ", h("span", { class: "muted", text: "version " + ds.version }))];
      if (ds.error) out.push(box("bad", [h("strong", { text: "Why: " }), ds.error]));
      if (ds.status === "rejected") out.push(box("bad", "Rejected by validation: nothing was uploaded. Fix the lines below and drop the file again."));
      out.push(h("div", { class: "card grid" },
        facts([
          ["Status", badge(ds.status)], ["Base model", ds.base_model], ["Method", ds.method],
          ["Size", fmtBytes(ds.size)], ["Examples", fmtNum(ds.examples !== null && ds.examples !== undefined ? ds.examples : stats.examples)],
          ["Errors", fmtNum(ds.error_count)], ["Warnings", fmtNum(ds.warning_count)]
        ]),
        facts([
          ["File id", ds.file_id ? h("code", { text: ds.file_id }) : null], ["Uploaded by", ds.upload_path],
          ["Tokens", fmtNum(stats.total_tokens)], ["Billable tokens / epoch", fmtNum(stats.estimated_billable_tokens_per_epoch)],
          stats.estimated_billable_tokens ? ["Billable tokens, job", h("span", { title: stats.epochs_assumption || "",
            text: fmtNum(stats.estimated_billable_tokens) + " (" + stats.assumed_epochs + " epochs assumed)" })] : null,
          stats.token_estimate && !stats.tokens_exact && stats.token_estimate.relative_error_95 !== null
            && stats.token_estimate.relative_error_95 !== undefined
            ? ["Estimate", "±" + (100 * stats.token_estimate.relative_error_95).toFixed(1) + " % (95 %), from " +
               fmtNum(stats.token_estimate.sampled_examples) + " examples counted"] : null,
          ["Duplicates", fmtNum(stats.duplicates)],
          ds.grader_blob ? ["Grader", h("code", { text: ds.grader_blob })] : null,
          ds.file_evicted_at ? ["File deleted at Azure", time(ds.file_evicted_at)] : null,
          ["Created", time(ds.created_at)], ["Updated", time(ds.updated_at)]
        ])));
      out.push(h("h2", { text: "Validation report" }));
      if (!ds.report) out.push(h("p", { class: "muted", text: "No report yet (the dataset is " + ds.status + ")." }));
      else if (report.valid && !errors.length) out.push(box("ok", "Valid: no errors."));
      out.push(h("section", { id: "report-errors" },
        errors.length || Object.keys(report.error_counts || {}).length ? [h("h3", { text: "Errors" }),
          issueGroups(errors, report.error_counts, codes, "error")] : null));
      out.push(h("section", { id: "report-warnings" },
        warnings.length ? [h("h3", { text: "Warnings" }), issueGroups(warnings, report.warning_counts, codes, "warning")] : null));
      out.push(h("h2", { text: "Versions" }));
      out.push(table([
        { label: "Version", value: function (v) { return link(datasetHref(v.id), v.id.split("@").pop()); } },
        { label: "Status", value: function (v) { return badge(v.status); } },
        { label: "Current", value: function (v) { return v.is_current ? "current" : ""; } },
        { label: "Created", value: function (v) { return time(v.created_at); } }
      ], ds.versions || [], "No versions.", "versions"));
      return out;
    }
  };

  // ------------------------------------------------------------------------- a job

  var SERIES = {
    loss: { title: "Loss", axis: "loss", series: [
      { label: "training loss", keys: ["train_loss", "training_loss"], color: "#0b62c4" },
      { label: "validation loss", keys: ["valid_loss", "validation_loss"], color: "#d9480f" },
      { label: "full validation loss", keys: ["full_valid_loss", "full_validation_loss"], color: "#7048e8" }] },
    accuracy: { title: "Token accuracy", axis: "mean token accuracy", series: [
      { label: "training token accuracy", keys: ["train_mean_token_accuracy", "training_mean_token_accuracy"], color: "#0b62c4" },
      { label: "validation token accuracy", keys: ["valid_mean_token_accuracy", "validation_mean_token_accuracy"], color: "#d9480f" },
      { label: "full validation token accuracy", keys: ["full_valid_mean_token_accuracy", "full_validation_mean_token_accuracy"], color: "#7048e8" }] },
    reward: { title: "Reward", axis: "mean reward", series: [
      { label: "training reward", keys: ["train_reward_mean", "train_mean_reward"], color: "#0b62c4" },
      { label: "validation reward", keys: ["valid_reward_mean", "valid_mean_reward"], color: "#d9480f" },
      { label: "full validation reward", keys: ["full_valid_reward_mean", "full_valid_mean_reward"], color: "#7048e8" }] }
  };
  var PALETTE = ["#0b62c4", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#1098ad", "#e67700", "#5c940d"];

  function points(rows, keys) {
    var out = [];
    rows.forEach(function (r) {
      var x = r.step;
      if (typeof x !== "number") return;
      for (var i = 0; i < keys.length; i++) {
        if (typeof r[keys[i]] === "number") { out.push({ x: x, y: r[keys[i]] }); return; }
      }
    });
    return out;
  }

  function nearest(pts, step) {
    var best = null;
    pts.forEach(function (p) { if (p.x <= step && (!best || p.x > best.x)) best = p; });
    return best || pts[0] || null;
  }

  // Checkpoints on the curve: at their step, on the first series that has a value there.
  function checkpointMarks(datasets, job) {
    var cps = (job.checkpoints || []).filter(function (c) { return typeof c.step === "number"; });
    if (!cps.length || !datasets.length) return [];
    var deployed = job.deployed_model;
    var marks = cps.map(function (c) {
      var base = nearest(datasets[datasets.length > 1 && datasets[1].data.length ? 1 : 0].data, c.step) || nearest(datasets[0].data, c.step);
      return base ? { x: c.step, y: base.y, id: c.id, deployable: c.deployable, deployed: !!deployed && (deployed === c.id || deployed === c.model) } : null;
    }).filter(Boolean);
    if (!marks.length) return [];
    return [{
      type: "scatter", label: "checkpoints", data: marks, showLine: false, order: -1,
      pointStyle: "rectRot", pointRadius: marks.map(function (m) { return m.deployed ? 9 : 6; }),
      pointHoverRadius: 10, borderColor: "#212529",
      backgroundColor: marks.map(function (m) { return m.deployed ? "#f59f00" : m.deployable ? "#ffffff" : "#adb5bd"; })
    }];
  }

  function chartCard(id, title, axis, datasets, job) {
    var canvas = h("canvas", { id: id, role: "img", "aria-label": title + " per step" });
    var card = h("div", { class: "card" }, h("h3", { text: title }), h("div", { class: "chart" }, canvas));
    var all = datasets.concat(checkpointMarks(datasets, job));
    charts.push(function () {
      if (!window.Chart) return;
      var chart = new window.Chart(canvas, {
        type: "line",
        data: { datasets: all },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
          interaction: { mode: "nearest", intersect: false },
          elements: { point: { radius: 0, hitRadius: 6 }, line: { borderWidth: 2, tension: 0.15 } },
          scales: {
            x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } },
            y: { title: { display: true, text: axis } }
          },
          plugins: {
            legend: { position: "bottom", labels: { boxWidth: 14 } },
            tooltip: { callbacks: { label: function (ctx) {
              var raw = ctx.raw || {};
              if (raw.id) return raw.id + " (step " + raw.x + ")" + (raw.deployed ? ", deployed" : raw.deployable ? ", deployable" : "");
              return ctx.dataset.label + ": " + fmtNum(raw.y);
            } } }
          }
        }
      });
      chart.$checkpoints = all.length - datasets.length;
    });
    return card;
  }

  function curves(job, results) {
    var rows = results.rows || [];
    if (!rows.length) {
      return h("p", { class: "muted", text: results.note || "No results yet." });
    }
    if (!window.Chart) {
      return box("warn", "The curves need the charting library (Chart.js), which did not load: check that " +
        "node_modules/chart.js was installed (npm ci) and deployed.");
    }
    var cards = [];
    function add(id, spec) {
      var datasets = spec.series.map(function (s) {
        return { label: s.label, data: points(rows, s.keys), borderColor: s.color, backgroundColor: s.color };
      }).filter(function (d) { return d.data.length; });
      if (datasets.length) cards.push(chartCard(id, spec.title, spec.axis, datasets, job));
    }
    var isRft = job.method === "reinforcement" || (results.columns || []).indexOf("train_reward_mean") >= 0;
    if (isRft) {
      add("chart-reward", SERIES.reward);
      var graders = (results.columns || []).filter(function (c) { return /^(train|valid)_reward_mean_.+/.test(c); });
      if (graders.length) {
        add("chart-graders", { title: "Reward per grader", axis: "mean reward", series: graders.map(function (c, i) {
          return { label: c.replace(/_reward_mean_/, " reward: ").replace(/^train /, "training ").replace(/^valid /, "validation "),
            keys: [c], color: PALETTE[i % PALETTE.length] };
        }) });
      }
    } else {
      add("chart-loss", SERIES.loss);
      add("chart-accuracy", SERIES.accuracy);
    }
    var note = results.every > 1 ? h("p", { class: "muted", text: "Every " + results.every + "th of " + results.row_count + " steps is drawn." }) : null;
    return [h("div", { class: "charts" }, cards), note,
      h("p", { class: "muted", text: "Diamonds mark checkpoints (filled orange: the one deployed; white: deployable; grey: no longer deployable)." })];
  }

  function timeline(history) {
    var items = history.status_history || [];
    if (!items.length) return h("p", { class: "muted", text: "No status changes recorded yet." });
    return h("ol", { class: "timeline" }, items.map(function (it, i) {
      var next = items[i + 1];
      var took = next && parseTime(next.at) !== null && parseTime(it.at) !== null ? ago(parseTime(next.at) - parseTime(it.at)) : null;
      return h("li", { dataset: { status: it.status } }, badge(it.status), " ", time(it.at),
        took ? h("span", { class: "muted", text: " · for " + took }) : null,
        it.why ? h("span", { class: "why", text: it.why }) : null,
        it.by ? h("span", { class: "muted by", text: " · by " + it.by }) : null);
    }));
  }

  function gateView(job) {
    var g = job.gate_result;
    var gate = job.deployment && job.deployment.gate;
    if (!g) {
      return h("p", { class: "muted", text: gate ? "Gate " + JSON.stringify(gate) + ": not judged yet." : "No gate: the job deploys when it succeeds." });
    }
    return [box(g.passed ? "ok" : "bad", g.passed ? "The gate passed." : "The gate failed: the model was not deployed."),
      table([
        { label: "Check", value: function (c) { return h("code", { text: c.check }); } },
        { label: "Limit", num: true, value: function (c) { return fmtNum(c.limit); } },
        { label: "Value", num: true, value: function (c) { return fmtNum(c.value); } },
        { label: "Result", value: function (c) { return badge(c.passed ? "passed" : "failed"); } },
        { label: "Why", value: function (c) { return c.why; } }
      ], g.checks || [], "No checks.", "gate")];
  }

  function metricsView(m) {
    if (!m) return h("p", { class: "muted", text: "No metrics yet." });
    var final = m.final || {}, best = m.best || {};
    var keys = Object.keys(final).concat(Object.keys(best)).filter(function (k, i, a) { return k !== "by" && a.indexOf(k) === i; });
    return [facts([["Steps", fmtNum(m.steps)], ["Trained tokens", fmtNum(m.trained_tokens)], ["Best step by", best.by]]),
      table([
        { label: "Metric", value: function (k) { return h("code", { text: k }); } },
        { label: "Final", num: true, value: function (k) { return fmtNum(final[k]); } },
        { label: "Best", num: true, value: function (k) { return fmtNum(best[k]); } }
      ], keys, "No figures.", "metrics")];
  }

  views.job = {
    title: "Job",
    load: function (id) {
      return Promise.all([api("/jobs/" + enc(id)), api("/jobs/" + enc(id) + "/history"), api("/jobs/" + enc(id) + "/results")]);
    },
    draw: function (d) {
      var job = d[0], history = d[1], results = d[2];
      var dep = job.deployment;
      var out = [h("h1", { text: job.id }), h("p", null, badge(job.status), job.openai_job_id ? h("span", { class: "muted" }, " · Azure OpenAI ", h("code", { text: job.openai_job_id })) : null)];
      if (job.status === "waiting") {
        out.push(box("warn", [h("strong", { text: "Waiting" + (job.queue_position ? ": number " + job.queue_position + " in the queue" : "") + ". " }),
          "Azure OpenAI has no room now; a monitor tick creates the job there when there is (1 is next)."]));
      }
      if (job.paused_reason) out.push(box("warn", [h("strong", { text: "Paused: " }), job.paused_reason]));
      if (job.retirement) out.push(box("warn", [h("strong", { text: "Retirement: " }), job.retirement.message || JSON.stringify(job.retirement)]));
      if (job.error) out.push(box("bad", [h("strong", { text: "Error" + (job.error.code ? " " + job.error.code : "") + ": " }), job.error.message || ""]));
      if (job.last_error && job.last_error.message) out.push(box("warn", [h("strong", { text: "Last transient error: " }), job.last_error.message]));
      out.push(h("div", { class: "card grid" },
        facts([
          ["Status", badge(job.status)], ["Method", job.method], ["Base model", job.base_model],
          ["Training data", job.training_dataset ? link(datasetHref(job.training_dataset.split("@")[0]), job.training_dataset) : null],
          ["Validation data", job.validation_dataset ? link(datasetHref(job.validation_dataset.split("@")[0]), job.validation_dataset) : null],
          ["Suffix", job.suffix], ["Seed", fmtNum(job.seed)], ["Training type", job.training_type],
          job.queue_position ? ["Queue position", String(job.queue_position)] : null
        ]),
        facts([
          ["Fine-tuned model", job.fine_tuned_model ? h("code", { text: job.fine_tuned_model }) : null],
          ["Deployed model", job.deployed_model ? h("code", { text: job.deployed_model }) : null],
          ["Model choice", job.model_choice ? [job.model_choice.asked ? "asked " + job.model_choice.asked + ": " : "",
            job.model_choice.why || JSON.stringify(job.model_choice)] : null],
          ["Hyperparameters", Object.keys(job.hyperparameters || {}).length ? json(job.hyperparameters) : null],
          ["Trained tokens", fmtNum(job.trained_tokens)],
          ["Created", time(job.created_at)], ["Finished", job.finished_at ? time(job.finished_at) : null]
        ])));

      out.push(h("h2", { text: "Deployment" }));
      if (!dep) out.push(h("p", { class: "muted", text: "Not deployed (deployment: false)." }));
      else {
        out.push(h("div", { class: "card" }, facts([
          ["Deployment", link(deploymentHref(dep.name), dep.name)], ["State", dep.state ? badge(dep.state) : h("span", { class: "muted", text: "not created yet" })],
          ["Serves", dep.model ? h("code", { text: dep.model }) : null], ["SKU", dep.sku + " × " + dep.capacity],
          ["Keep-alive", dep.keep_alive], ["Idle deadline in", countdown(dep.idle_deadline)]
        ])));
      }
      out.push(h("h2", { text: "Curves" }), h("section", { id: "curves" }, curves(job, results)));
      out.push(h("h2", { text: "Status timeline" }), h("section", { id: "timeline" }, timeline(history)));
      out.push(h("h2", { text: "Gate" }), h("section", { id: "gate" }, gateView(job)));
      out.push(h("h2", { text: "Metrics" }), h("section", { id: "metrics" }, metricsView(job.metrics)));
      out.push(h("h2", { text: "Checkpoints" }), table([
        { label: "Checkpoint", value: function (c) { return h("code", { text: c.id }); } },
        { label: "Step", num: true, value: function (c) { return fmtNum(c.step); } },
        { label: "Deployable", value: function (c) { return c.deployable ? "yes" : "no"; } },
        { label: "Metrics", value: function (c) { return c.metrics ? figures(c.metrics) : null; } }
      ], job.checkpoints || [], "No checkpoints yet.", "checkpoints"));
      out.push(h("h2", { text: "Recent events" }), moreAfter(8, (job.events || []).slice().reverse(), function (items) {
        return table([
          { label: "At", value: function (e) { return time(e.at || e.created_at); } },
          { label: "Level", value: function (e) { return e.level; } },
          { label: "Message", value: function (e) { return e.message; } }
        ], items, "No events yet.", "events");
      }, "events"));
      return out;
    }
  };

  // ------------------------------------------------------------------ a deployment

  function changeKeepAlive(name, select, button) {
    var value = select.value;
    busy++;
    button.disabled = true;
    select.disabled = true;
    return api("/deployments/" + enc(name), { method: "PATCH", body: { keep_alive: value } }).then(function (d) {
      notice("Keep-alive of " + name + " is now " + d.keep_alive + ".", "ok");
    }, function (err) {
      notice("Could not change the keep-alive: " + err.message, "bad");
    }).then(function () { busy--; return render(true); });
  }

  function rollback(name, previous, button) {
    if (!window.confirm("Roll " + name + " back to " + previous + "?")) return Promise.resolve();
    busy++;
    button.disabled = true;
    return api("/deployments/" + enc(name) + "/rollback", { method: "POST", body: {} }).then(function (d) {
      notice("Asked to roll " + name + " back to " + (d.pending_model || previous) + ": the monitor's next tick " +
        "carries it out.", "ok");
    }, function (err) {
      notice("Could not roll back: " + err.message, "bad");
    }).then(function () { busy--; return render(true); });
  }

  views.deployment = {
    title: "Deployment",
    load: function (name) { return api("/deployments/" + enc(name)); },
    draw: function (d) {
      var out = [h("h1", { text: d.name }), h("p", null, badge(d.state))];
      if (d.retirement) out.push(box("warn", [h("strong", { text: "Retirement: " }), d.retirement.message || JSON.stringify(d.retirement)]));
      if (d.blocked_reason) out.push(box("bad", [h("strong", { text: "Blocked: " }), d.blocked_reason]));
      if (d.last_error && d.last_error.message) out.push(box("warn", [h("strong", { text: "Last transient error: " }), d.last_error.message]));
      if (d.keep_alive === "none" && d.idle_deadline) {
        out.push(box("warn", "Keep-alive is none: Azure deletes this deployment at its idle deadline unless it is used."));
      }
      out.push(h("div", { class: "card" }, h("h2", { text: "Idle deadline" }),
        h("p", null, "Azure's idle rule deletes it in ", countdown(d.idle_deadline), d.idle_deadline ? h("span", { class: "muted", text: " · " + fmtTime(d.idle_deadline) }) : null),
        h("p", { class: "muted" }, "Last activity: ", time(d.last_activity))));

      var select = h("select", { id: "keep-alive", "aria-label": "Keep-alive policy" },
        ["redeploy", "ping", "none"].map(function (v) {
          return h("option", { value: v, selected: v === d.keep_alive, text: v });
        }));
      var save = h("button", { type: "button", id: "keep-alive-save", class: "primary", text: "Change keep-alive" });
      save.addEventListener("click", function () { changeKeepAlive(d.name, select, save); });
      var asked = d.previous_model && d.pending_model === d.previous_model;
      var back = h("button", { type: "button", id: "rollback", class: "danger",
        disabled: !d.previous_model || d.state === "rolling" || asked,
        text: !d.previous_model ? "Roll back (no previous model)" : asked ? "Rollback to " + d.previous_model + " asked"
          : "Roll back to " + d.previous_model });
      back.addEventListener("click", function () { rollback(d.name, d.previous_model, back); });
      out.push(h("div", { class: "card" }, h("h2", { text: "Actions" }),
        h("div", { class: "actions" }, h("label", { for: "keep-alive", text: "Keep-alive policy" }), select, save),
        h("p", { class: "muted", text: "redeploy: re-create it before the deadline · ping: one call keeps it · none: let it expire." }),
        h("div", { class: "actions" }, back),
        d.pending_model ? h("p", null, "Asked to serve next: ", h("code", { text: d.pending_model })) : null));

      out.push(h("div", { class: "card grid" },
        facts([
          ["State", badge(d.state)], ["Keep-alive", h("span", { id: "keep-alive-now", text: d.keep_alive })],
          ["Model", d.model ? h("code", { text: d.model }) : null],
          ["Previous model", d.previous_model ? h("code", { text: d.previous_model }) : null],
          ["Job", d.job_id ? link(jobHref(d.job_id), d.job_id) : null],
          d.requested_by ? ["Under way", h("span", { id: "requested-by", text: d.requested_by.why + ", asked by " + d.requested_by.by })] : null,
          ["SKU", (d.sku || "–") + " × " + (d.capacity || "–")], ["Provisioning", d.provisioning_state]
        ]),
        facts([
          ["Hosting hours", fmtNum(d.hosting_hours, 2)], ["Estimated cost", d.estimated_cost_usd === null || d.estimated_cost_usd === undefined ? null : "$" + fmtNum(d.estimated_cost_usd, 2)],
          ["Redeploys", fmtNum(d.redeploys)], ["Pings", fmtNum(d.pings)], ["Restores", fmtNum(d.restores)],
          ["Rolls", fmtNum(d.rolls)], ["Created", time(d.created_at)], ["Updated", time(d.updated_at)]
        ])));
      out.push(h("h2", { text: "Recent keeper and monitor events" }), moreAfter(10, d.events || [], function (items) {
        return table([
          { label: "At", value: function (e) { return time(e.at); } },
          { label: "Action", value: function (e) { return h("code", { class: "nowrap", text: e.action }); } },
          { label: "Reason", value: function (e) { return e.reason; } },
          { label: "Outcome", value: function (e) { return e.outcome; } },
          { label: "Deadline", value: function (e) { return e.deadline ? fmtTime(e.deadline) : null; } }
        ], items, "No events yet.", "events");
      }, "events"));
      return out;
    }
  };

  // ------------------------------------------------------------------------ router

  function route() {
    var parts = location.hash.replace(/^#\/?/, "").split("/");
    var kind = parts[0] || "";
    var rest = parts.slice(1).join("/");
    var arg = rest ? decodeURIComponent(rest) : null;
    if (kind === "datasets") return arg ? { view: "dataset", arg: arg, nav: "datasets" } : { view: "datasets", nav: "datasets" };
    if (kind === "jobs") return arg ? { view: "job", arg: arg, nav: "jobs" } : { view: "jobs", nav: "jobs" };
    if (kind === "deployments") return arg ? { view: "deployment", arg: arg, nav: "deployments" } : { view: "deployments", nav: "deployments" };
    return { view: "home", nav: "" };
  }

  var rendering = null;

  function render(force) {
    var r = route();
    var key = r.view + ":" + (r.arg || "");
    var v = views[r.view];
    document.querySelectorAll("header nav a").forEach(function (a) { a.classList.toggle("current", a.dataset.view === r.nav); });
    var mine = {};
    rendering = mine;
    document.body.dataset.state = "loading";
    return v.load(r.arg).then(function (data) {
      if (rendering !== mine) return;
      var fingerprint = JSON.stringify(data);
      if (!force && lastRender && lastRender.key === key && lastRender.fingerprint === fingerprint) {
        document.body.dataset.state = "ready";
        return;
      }
      charts = [];
      var nodes = v.draw(data, r.arg);
      var scroll = lastRender && lastRender.key === key ? window.scrollY : 0;
      view.replaceChildren();
      append(view, [nodes]);
      charts.forEach(function (make) { make(); });
      charts = [];
      tickCountdowns();
      document.title = (r.arg || v.title) + " · Fine-tuning autopilot";
      document.getElementById("updated").textContent = "read at " + new Date().toLocaleTimeString("en-GB") + ".";
      lastRender = { key: key, fingerprint: fingerprint };
      window.scrollTo(0, scroll);
      document.body.dataset.state = "ready";
      document.body.dataset.view = r.view;
    }, function (err) {
      if (rendering !== mine) return;
      view.replaceChildren(h("h1", { text: v.title }), errorView(err));
      lastRender = null;
      document.body.dataset.state = "error";
      document.body.dataset.view = r.view;
    });
  }

  function autoRefresh() {
    if (document.hidden || busy) return;
    var active = document.activeElement;
    if (active && view.contains(active) && (active.tagName === "SELECT" || active.tagName === "BUTTON")) return;
    render(false);
  }

  window.addEventListener("hashchange", function () { notice(null); window.scrollTo(0, 0); render(true); });
  document.getElementById("refresh").addEventListener("click", function () { render(true); });
  var openapi = document.getElementById("openapi-link");
  openapi.href = API + "/openapi.json" + (KEY ? "?code=" + enc(KEY) : "");
  setInterval(tickCountdowns, 1000);
  if (REFRESH_SECONDS > 0) setInterval(autoRefresh, REFRESH_SECONDS * 1000);
  window.ftDashboard = { render: render, api: api };
  render(true);
})();
