// dp-local console: loads an opened run's fields and attempts on demand, and refreshes the page's live region every
// 3 seconds without losing the reader's place (open runs, scroll position, a filter being chosen). No framework, no
// outside requests.
(function () {
  "use strict";
  var INTERVAL = 3000;
  var busy = false;

  // An opened run fetches its fragment (the instance, its attempts and actions) from the link it carries.
  function load(details) {
    var url = details.getAttribute("data-fragment");
    var target = details.querySelector(".lazy");
    if (!url || !target) return Promise.resolve();
    return fetch(url, { credentials: "same-origin", headers: { "X-Console-Fragment": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").body;
        target.replaceChildren.apply(target, Array.prototype.slice.call(fresh.childNodes));
        target.classList.add("loaded");
      })
      .catch(function () { /* the link stays */ });
  }

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details.tagName === "DETAILS" && details.open && details.hasAttribute("data-fragment")) {
      var target = details.querySelector(".lazy");
      if (target && !target.classList.contains("loaded")) load(details);
    }
  }, true);

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
        // Keep what is open, with what it shows, until its fresh fragment arrives.
        var open = {};
        document.querySelectorAll("details[open]").forEach(function (d) {
          var lazy = d.querySelector(".lazy.loaded");
          if (d.id) open[d.id] = lazy ? Array.prototype.slice.call(lazy.childNodes) : null;
        });
        var x = window.scrollX, y = window.scrollY;
        live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes));
        var reloads = [];
        Object.keys(open).forEach(function (id) {
          var d = document.getElementById(id);
          if (!d) return;
          var lazy = d.querySelector(".lazy");
          if (lazy && open[id]) {
            lazy.replaceChildren.apply(lazy, open[id]);
            lazy.classList.add("loaded");
          }
          d.open = true;
          reloads.push(load(d));
        });
        window.scrollTo(x, y);
        return Promise.all(reloads).then(function () {
          var note = document.getElementById("refresh-note");
          if (note) note.textContent = "refreshed " + new Date().toISOString().slice(11, 19) + " UTC";
        });
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, INTERVAL);
})();
