// Small niceties on top of pages that work without JavaScript: copy buttons, and focus
// moved to what the page wants the user to read first (an error summary, a new result).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var first = document.querySelector("[data-focus]");
    if (first) { first.focus(); }
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var field = document.getElementById(button.getAttribute("data-copy"));
      var status = button.closest(".field") && button.closest(".field").querySelector("[data-copy-status]");
      if (!field || !navigator.clipboard) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(field.value).then(function () {
          if (status) { status.textContent = "Adressen er kopiert."; }
        }, function () {
          field.select();
          if (status) { status.textContent = "Kunne ikke kopiere. Adressen er markert: trykk Ctrl+C."; }
        });
      });
    });
  });
})();
