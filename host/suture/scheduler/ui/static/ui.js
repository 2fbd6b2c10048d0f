// Live updates without reloading: every element with data-live="URL" fetches that URL's HTML
// fragment every data-every seconds and replaces its content when it changed. It stops when the
// fragment says it is finished (data-finished="true"), while the tab is hidden, and never
// replaces content while focus is inside it (a keyboard user keeps their place).
"use strict";
(function () {
  function watch(el) {
    var url = el.getAttribute("data-live");
    var every = Math.max(1, parseInt(el.getAttribute("data-every") || "5", 10)) * 1000;
    var last = el.innerHTML;
    function finished() {
      var marker = el.querySelector("[data-finished]");
      return marker && marker.getAttribute("data-finished") === "true";
    }
    function tick() {
      if (finished()) { return; }
      if (document.hidden || el.contains(document.activeElement)) {
        setTimeout(tick, every);
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.redirected || !response.ok) { throw new Error("status " + response.status); }
          return response.text();
        })
        .then(function (html) {
          if (html !== last) { el.innerHTML = html; last = html; }
          el.removeAttribute("data-stale");
        })
        .catch(function () { el.setAttribute("data-stale", "true"); })
        .then(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelectorAll("[data-live]");
    for (var i = 0; i < live.length; i++) { watch(live[i]); }
  });
})();
