// Copydesk: small progressive enhancements on top of htmx. Every page works without this file.
(function () {
  "use strict";

  // Errors from htmx requests that were not swapped (403, 404, 500, network): say so.
  function showError(key) {
    var box = document.getElementById("htmx-error");
    if (!box) return;
    box.textContent = box.dataset[key] || box.dataset.failed;
    box.hidden = false;
  }
  document.addEventListener("htmx:responseError", function (event) {
    showError(event.detail.xhr && event.detail.xhr.status === 403 ? "forbidden" : "failed");
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
    counter.querySelector("[data-char-count-value]").textContent = String(length);
    counter.classList.toggle("over-limit", length > Number(counter.dataset.limit || Infinity));
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

  // Keyboard: Ctrl/Cmd+S saves the editor; "/" jumps to the search box.
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
      var editor = document.querySelector("form[data-editor]");
      if (editor) {
        event.preventDefault();
        editor.requestSubmit();
      }
      return;
    }
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey) {
      var target = event.target;
      if (target.closest("input, textarea, select, [contenteditable]")) return;
      var search = document.querySelector("input[type=search]");
      if (search) {
        event.preventDefault();
        search.focus();
      }
    }
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
})();
