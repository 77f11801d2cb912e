// HUMBEX console: live refresh over server-sent events (docs/console.md#live-updates). The page
// works without this file; with it, the element marked data-live is re-fetched from the server
// (already rendered and escaped there) shortly after a signal or order changes.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var label = document.getElementById("live-status");
  if (!live || !live.dataset.live || !window.EventSource || !window.fetch) {
    if (label) label.textContent = "off (reload to update)";
    return;
  }
  var url = live.dataset.live;
  var timer = null;
  var busy = false;
  var again = false;
  function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.redirected || !r.ok) { throw new Error("status " + r.status); }
        return r.text();
      })
      .then(function (html) { live.innerHTML = html; })
      .catch(function () { if (label) label.textContent = "update failed; reload the page"; })
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }
  // At most one refresh per 250 ms, however many events arrive.
  function schedule() { if (!timer) timer = setTimeout(refresh, 250); }
  var source = new EventSource("/console/events");
  source.addEventListener("signal", schedule);
  source.addEventListener("order", schedule);
  source.onopen = function () { if (label) label.textContent = "live"; schedule(); };
  source.onerror = function () { if (label) label.textContent = "reconnecting…"; };
})();
