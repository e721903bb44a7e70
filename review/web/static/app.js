/* Keyboard triage for the review queue and candidate pages (no framework, no inline JS).
 *
 * Queue page: j/k select the next/previous row (aria-selected + focus ring), Enter or o opens
 * it, a/r/d/t decide on it via the JSON API (X-CSRF-Token from <meta name="csrf-token">) and
 * update its status in place, then move down.
 * Candidate page: a/r/d/t decide with the note, then reload; j/k go to the next/previous
 * candidate of the selection. "?" shows the shortcut list. Keys typed in a field are ignored.
 * Everything also works without this script (plain links and forms).
 */
(function () {
  "use strict";

  var DECISIONS = { a: "accept", r: "reject", d: "duplicate", t: "translate" };
  var STATUS_OF = { accept: "accepted", reject: "rejected", duplicate: "duplicate", translate: "needs_translation" };

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function flash(message, isError) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = message;
    box.classList.toggle("error", Boolean(isError));
    window.clearTimeout(flash.timer);
    flash.timer = window.setTimeout(function () { box.textContent = ""; }, 4000);
  }

  function typing(event) {
    var el = event.target;
    if (!el || !el.tagName) { return false; }
    var tag = el.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
  }

  function decide(candidateId, decision, note, by) {
    var body = { decision: decision };
    if (note) { body.note = note; }
    if (by) { body.by = by; }
    return fetch("/api/candidates/" + encodeURIComponent(candidateId) + "/decision", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          throw new Error(data.detail || ("HTTP " + response.status));
        }
        return data;
      });
    });
  }

  function toggleHelp() {
    var help = document.getElementById("shortcuts");
    if (help) {
      help.open = !help.open;
      if (help.open) { help.querySelector("summary").focus(); }
    }
  }

  /* ------------------------------------------------------------------ queue page */

  function setupQueue() {
    var rows = Array.prototype.slice.call(document.querySelectorAll('[data-testid="queue-row"]'));
    var current = -1;

    function select(index) {
      if (!rows.length) { return; }
      index = Math.max(0, Math.min(rows.length - 1, index));
      rows.forEach(function (row, i) { row.setAttribute("aria-selected", i === index ? "true" : "false"); });
      current = index;
      rows[index].focus();
      rows[index].scrollIntoView({ block: "nearest" });
    }

    rows.forEach(function (row, i) {
      row.addEventListener("click", function (event) {
        if (event.target.closest("a, input, button")) { return; }
        select(i);
      });
    });

    function reviewer() {
      var field = document.getElementById("reviewer");
      return field ? field.value.trim() : "";
    }

    return function (event) {
      var key = event.key;
      if (key === "j") { select(current + 1); return true; }
      if (key === "k") { select(current < 0 ? 0 : current - 1); return true; }
      if (current < 0) { return false; }
      var row = rows[current];
      if (key === "Enter" || key === "o") {
        window.location.href = row.getAttribute("data-href");
        return true;
      }
      var decision = DECISIONS[key];
      if (!decision) { return false; }
      var id = row.getAttribute("data-candidate-id");
      decide(id, decision, "", reviewer()).then(function (result) {
        var status = result.status || STATUS_OF[decision];
        row.setAttribute("data-status", status);
        var cell = row.querySelector('[data-field="status"]');
        if (cell) {
          cell.textContent = "";
          var span = document.createElement("span");
          span.className = "status status-" + status;
          span.textContent = status.replace(/_/g, " ");
          cell.appendChild(span);
        }
        flash("Candidate " + id + ": " + status.replace(/_/g, " "));
        if (current < rows.length - 1) { select(current + 1); }
      }).catch(function (error) {
        flash("Candidate " + id + ": " + error.message, true);
      });
      return true;
    };
  }

  /* ------------------------------------------------------------------ candidate page */

  function setupCandidate() {
    var article = document.querySelector("article.candidate");
    return function (event) {
      var key = event.key;
      if (key === "j" || key === "k") {
        var link = document.querySelector(key === "j" ? 'a[data-nav="next"]' : 'a[data-nav="prev"]');
        if (link) { window.location.href = link.getAttribute("href"); }
        return true;
      }
      var decision = DECISIONS[key];
      if (!decision || !article) { return false; }
      var id = article.getAttribute("data-candidate-id");
      var note = document.getElementById("note");
      var by = document.getElementById("by");
      decide(id, decision, note ? note.value.trim() : "", by ? by.value.trim() : "").then(function (result) {
        flash("Decision recorded: " + (result.status || decision).replace(/_/g, " "));
        window.location.reload();
      }).catch(function (error) {
        flash("Could not record the decision: " + error.message, true);
      });
      return true;
    };
  }

  function start() {
    var page = document.body.getAttribute("data-page");
    var handler = page === "queue" ? setupQueue() : page === "candidate" ? setupCandidate() : null;
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && typing(event)) { event.target.blur(); return; }  // back to the keys
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event)) { return; }
      if (event.key === "?") { toggleHelp(); event.preventDefault(); return; }
      if (handler && handler(event)) { event.preventDefault(); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
