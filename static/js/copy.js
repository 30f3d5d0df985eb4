// Progressive enhancement for the "key created" page: a Copy button, and the
// whole key selected on focus. Without JavaScript the key is still shown in a
// read-only field the user can select and copy by hand.
(function () {
  "use strict";
  function status(button, text) {
    var box = button.closest(".secret-box");
    var out = box && box.querySelector(".copy-status");
    if (out) { out.textContent = text; }
  }
  function fallbackCopy(field) {
    field.focus();
    field.select();
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    field.addEventListener("focus", function () { field.select(); });
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () { button.textContent = "Copied"; status(button, "The key is on your clipboard."); };
      var failed = function () { status(button, "Copying failed: select the key and copy it by hand."); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          if (fallbackCopy(field)) { done(); } else { failed(); }
        });
      } else if (fallbackCopy(field)) {
        done();
      } else {
        failed();
      }
    });
  });
})();
