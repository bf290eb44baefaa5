// Copydesk keyboard shortcuts ("?" lists them). Every page works without this file.
//
// Queue: j/k move the selection (the row's link takes the focus), Enter opens, x ticks the row,
// e / r open the draft at its editor / review comment, a approves the ticked (or selected) drafts.
// Draft page: e focuses the editor, s saves, a approves, r focuses the review comment. The
// targets carry data-shortcut="edit|save|approve|request-changes"; a missing one is skipped.
// Everywhere: "/" goes to the search box; Ctrl/Cmd+S saves the editor, also while typing in it.
// Other keys never fire while typing in a field or with Ctrl/Meta/Alt held. This is the one key
// handler; it is delegated from document, so content swapped in by htmx needs no re-binding.
// Focus after a swap is copydesk.js's (data-focus).
(function () {
  "use strict";

  var script = document.currentScript;
  var helpUrl = (script && script.dataset.helpUrl) || "/drafts/shortcuts/";
  var selectedId = null; // data-draft-id of the selected queue row

  // --- Where we are -------------------------------------------------------------------------

  function isTyping(target) {
    if (!target || !target.closest) return false;
    if (target.isContentEditable) return true;
    return Boolean(target.closest(
      "textarea, select, [contenteditable]:not([contenteditable=false]), " +
      "input:not([type=checkbox]):not([type=radio]):not([type=button])" +
      ":not([type=submit]):not([type=reset])"
    ));
  }

  function isInteractive(target) {
    return Boolean(target && target.closest &&
                   target.closest("a[href], button, input, select, textarea, summary"));
  }

  function shortcutTarget(name, fallback) {
    return document.querySelector('[data-shortcut="' + name + '"]') ||
      (fallback ? document.querySelector(fallback) : null);
  }

  // --- Queue rows ---------------------------------------------------------------------------

  function rows() {
    return Array.prototype.slice.call(
      document.querySelectorAll("[data-queue-rows] [data-queue-row]"));
  }

  function currentRow() {
    // The row holding the focus wins (someone may have tabbed there), then the selected one.
    var active = document.activeElement;
    var focused = active && active.closest ? active.closest("[data-queue-row]") : null;
    if (focused) return focused;
    return rows().filter(function (row) { return row.dataset.draftId === selectedId; })[0] ||
      null;
  }

  function select(row, focus) {
    rows().forEach(function (other) {
      other.classList.remove("is-selected");
      other.removeAttribute("aria-current");
    });
    if (!row) {
      selectedId = null;
      return;
    }
    selectedId = row.dataset.draftId;
    row.classList.add("is-selected");
    row.setAttribute("aria-current", "true");
    var link = row.querySelector("[data-row-link]");
    if (focus && link) link.focus();
    if (typeof row.scrollIntoView === "function") row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return false;
    var index = all.indexOf(currentRow());
    var next = index < 0 ? 0 : Math.min(Math.max(index + step, 0), all.length - 1);
    select(all[next], true);
    return true;
  }

  function rowLink(row) {
    return row ? row.querySelector("[data-row-link]") : null;
  }

  function openRow(hash) {
    var link = rowLink(currentRow());
    if (!link) return false;
    window.location.assign(link.href + (hash || ""));
    return true;
  }

  // --- Actions ------------------------------------------------------------------------------

  function focusField(element) {
    if (!element) return false;
    if (typeof element.scrollIntoView === "function") element.scrollIntoView({ block: "center" });
    element.focus();
    return true;
  }

  function edit() {
    var editor = shortcutTarget("edit", "form[data-editor] textarea");
    if (editor) return focusField(editor);
    return openRow("#edit");
  }

  function save() {
    var target = shortcutTarget("save", "form[data-editor]");
    if (!target) return false;
    if (target.tagName === "FORM") {
      target.requestSubmit();
    } else {
      target.click();
    }
    return true;
  }

  function approve() {
    var button = shortcutTarget("approve");
    if (!button || button.disabled) return false;
    var form = button.form;
    if (form && rows().length) {
      // In the queue: with nothing ticked, approve the selected row.
      var ticked = form.querySelector("[data-row-check]:checked");
      var row = currentRow();
      var box = row ? row.querySelector("[data-row-check]") : null;
      if (!ticked && box) box.checked = true;
    }
    button.click();
    return true;
  }

  function requestChanges() {
    var comment = shortcutTarget("request-changes");
    if (comment) return focusField(comment);
    return openRow("#review");
  }

  function toggleRow() {
    var row = currentRow();
    var box = row ? row.querySelector("[data-row-check]") : null;
    if (!box) return false;
    box.click(); // fires input and change, as a real click does
    select(row, true);
    return true;
  }

  // --- Help dialog --------------------------------------------------------------------------

  var loadingHelp = null;

  function helpDialog() {
    var dialog = document.getElementById("shortcuts-help");
    if (dialog) return Promise.resolve(dialog);
    if (!loadingHelp) {
      loadingHelp = fetch(helpUrl, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var found = doc.getElementById("shortcuts-help");
          if (!found || found.tagName !== "DIALOG") return null;
          return document.body.appendChild(document.importNode(found, true));
        })
        .catch(function () { return null; })
        .then(function (dialog) {
          loadingHelp = null;
          return dialog;
        });
    }
    return loadingHelp;
  }

  function openHelp() {
    helpDialog().then(function (dialog) {
      if (dialog && !dialog.open) dialog.showModal();
    });
    return true;
  }

  // --- Keys ---------------------------------------------------------------------------------

  var KEYS = {
    j: function () { return move(1); },
    k: function () { return move(-1); },
    x: toggleRow,
    e: edit,
    s: save,
    a: approve,
    r: requestChanges,
    "/": function () { return focusField(document.querySelector("input[type=search]")); },
    "?": openHelp,
    Enter: function (event) {
      // On a link or a button Enter does what it always does.
      if (isInteractive(event.target)) return false;
      return openRow("");
    },
  };

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
      // Where there is no editor, the browser's own Ctrl+S stays.
      if (save()) event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    if (document.querySelector("dialog[open]")) return; // a dialog has the keys (Esc closes)
    var handler = Object.prototype.hasOwnProperty.call(KEYS, event.key) ? KEYS[event.key] : null;
    if (handler && handler(event)) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-shortcuts-open]")) openHelp();
  });

  // Clicking into a row (not on its controls) selects it, so j/k continue from there.
  document.addEventListener("focusin", function (event) {
    var row = event.target.closest ? event.target.closest("[data-queue-row]") : null;
    if (row && row.dataset.draftId !== selectedId) select(row, false);
  });

  // --- After htmx swaps and page loads ------------------------------------------------------

  document.addEventListener("htmx:afterSwap", function (event) {
    if (selectedId === null) return;
    var row = rows().filter(function (r) { return r.dataset.draftId === selectedId; })[0];
    // Keep the selection on the same draft; take the focus back only if the swap dropped it and
    // brought nothing of its own to focus (a bulk report, see copydesk.js).
    var swapped = event.detail.target;
    var lost = (!document.activeElement || document.activeElement === document.body) &&
      !(swapped && swapped.querySelector && swapped.querySelector("[data-focus]"));
    if (row) {
      select(row, lost);
    } else {
      selectedId = null;
    }
  });

  function focusFromHash() {
    if (window.location.hash === "#edit") {
      focusField(shortcutTarget("edit", "form[data-editor] textarea"));
    } else if (window.location.hash === "#review") {
      focusField(shortcutTarget("request-changes"));
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusFromHash);
  } else {
    focusFromHash();
  }
})();
