// dp-local console: refreshes the page's live region every 3 seconds without losing the reader's place (open
// runs, scroll position, a focused filter). No framework, no outside requests.
(function () {
  "use strict";
  var INTERVAL = 3000;
  var busy = false;

  function openRuns() {
    var ids = [];
    document.querySelectorAll("details[open]").forEach(function (d) { if (d.id) ids.push(d.id); });
    return ids;
  }

  function refresh() {
    var live = document.getElementById("live");
    if (!live || busy || document.hidden) return;
    // The confirmation page and a filter being chosen are left alone.
    if (document.querySelector("form.confirm")) return;
    var active = document.activeElement;
    if (active && active.tagName === "SELECT") return;
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!fresh) return;
        var open = openRuns();
        var x = window.scrollX, y = window.scrollY;
        live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes));
        open.forEach(function (id) {
          var d = document.getElementById(id);
          if (d) d.open = true;
        });
        window.scrollTo(x, y);
        var note = document.getElementById("refresh-note");
        if (note) note.textContent = "refreshed " + new Date().toISOString().slice(11, 19) + " UTC";
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, INTERVAL);
})();
