// Copydesk: small progressive enhancements on top of htmx. Every page works without this file.
(function () {
  "use strict";

  // Errors from htmx requests that were not swapped (403, 404, 500, network): say so. A 403
  // the server explains comes as plain text (its 403 handler): show that reason as text.
  function showError(key, reason) {
    var box = document.getElementById("htmx-error");
    if (!box) return;
    box.textContent = reason || box.dataset[key] || box.dataset.failed;
    box.hidden = false;
  }
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || xhr.status !== 403) return showError("failed");
    var explained = (xhr.getResponseHeader("Content-Type") || "").indexOf("text/plain") === 0;
    showError("forbidden", explained ? xhr.responseText : "");
  });
  document.addEventListener("htmx:sendError", function () { showError("offline"); });
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("htmx-error");
    if (box) box.hidden = true;
  });

  // Live character count under the editor.
  function updateCount(textarea) {
    var form = textarea.closest("form");
    var counter = form && form.querySelector("[data-char-count]");
    if (!counter) return;
    var length = Array.from(textarea.value.replace(/\r\n/g, "\n").trim()).length;
    var value = counter.querySelector("[data-char-count-value]");
    if (value) value.textContent = String(length);
    // A limit of 0 means none.
    counter.classList.toggle("over-limit", length > (Number(counter.dataset.limit) || Infinity));
  }
  document.addEventListener("input", function (event) {
    if (event.target.matches("[data-editor] textarea")) updateCount(event.target);
  });
  document.addEventListener("htmx:load", function (event) {
    event.detail.elt.querySelectorAll("[data-editor] textarea").forEach(updateCount);
  });

  // "Select all" checkbox over a list of checkboxes with the same name.
  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-select-all]");
    if (!all) return;
    document.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]')
      .forEach(function (box) { box.checked = all.checked; });
  });

  // Keys are all handled in shortcuts.js.

  // --- Draft page ------------------------------------------------------------------------------

  function editorTextarea() {
    return document.querySelector("form[data-editor] textarea");
  }

  function isDirty(textarea) {
    return Boolean(textarea) && textarea.value !== textarea.defaultValue;
  }

  // The one focus protocol: focus follows the result of a swap (a saved notice, the conflict
  // view, an error, a new comment, a revision diff, the queue's bulk report), which the server
  // marks with data-focus. Never the live checks, which must leave the focus in the editor.
  function focusResult(root) {
    if (!root || !root.querySelector) return;
    var target = root.matches("[data-focus]") ? root : root.querySelector("[data-focus]");
    if (target) target.focus();
  }
  document.addEventListener("htmx:load", function (event) { focusResult(event.detail.elt); });

  // An action that replaces the whole workspace (claim, submit, restore, another candidate)
  // would drop unsaved editor text: ask first.
  document.addEventListener("htmx:confirm", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "draft-workspace") return;
    if (event.detail.elt.closest("form[data-editor]")) return;
    var textarea = editorTextarea();
    if (!isDirty(textarea)) return;
    event.preventDefault();
    var form = textarea.closest("form[data-editor]");
    if (window.confirm(form.dataset.unsavedMessage || "Discard your unsaved text?")) {
      event.detail.issueRequest(true);
    }
  });

  // Typing on while a save is in flight: the saved workspace comes back with the text as it was
  // sent; put the newer text back into the new editor (it is based on the new revision).
  var sentText = null;
  var typedText = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt.matches && elt.matches("form[data-editor]")) {
      var textarea = elt.querySelector("textarea");
      sentText = textarea ? textarea.value : null;
    }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (sentText === null || !event.detail.elt.matches("form[data-editor]")) return;
    var textarea = editorTextarea();
    typedText = textarea && textarea.value !== sentText ? textarea.value : null;
    sentText = null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (typedText === null) return;
    var textarea = editorTextarea();
    if (textarea) {
      textarea.value = typedText;
      updateCount(textarea);
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }
    typedText = null;
  });

  // Presence: say goodbye when the page goes away, so others stop seeing us at once rather than
  // after the presence window.
  window.addEventListener("pagehide", function () {
    var box = document.getElementById("presence");
    if (!box || !box.dataset.presenceUrl || !navigator.sendBeacon) return;
    var token = "";
    try {
      token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (error) {
      return;
    }
    var data = new FormData();
    data.append("leave", "1");
    data.append("csrfmiddlewaretoken", token);
    navigator.sendBeacon(box.dataset.presenceUrl, data);
  });

  // Warn before leaving a page with unsaved editor text.
  var submitting = false;
  document.addEventListener("submit", function () { submitting = true; });
  document.addEventListener("htmx:afterRequest", function () { submitting = false; });
  window.addEventListener("beforeunload", function (event) {
    if (submitting) return;
    var textarea = document.querySelector("form[data-editor] textarea");
    if (textarea && textarea.value !== textarea.defaultValue) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // A catalog file over the server's limit is refused as soon as it is chosen, so nobody waits
  // for an upload that will be turned away (the server refuses it anyway).
  function formatSize(bytes) {
    var units = ["KB", "MB", "GB"];
    var value = bytes / 1024;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return value.toFixed(1) + "\u00a0" + units[unit];
  }
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-max-bytes]")) return;
    var limit = Number(input.dataset.maxBytes);
    var file = input.files && input.files[0];
    if (file && limit && file.size > limit) {
      input.setCustomValidity(input.dataset.tooLarge
        .replace("{file}", file.name).replace("{size}", formatSize(file.size)));
      input.reportValidity();
    } else {
      input.setCustomValidity("");
    }
  });
})();
