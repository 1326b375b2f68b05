// The exposure clock of the review pages: counts the current stretch of review up live
// from the figure the server rendered, and shows the break reminder once the stretch
// passes the configured limit. The pages work without it (they show the figure as of
// loading). It reads nothing but its own box and sends nothing anywhere.
(function () {
  "use strict";
  var box = document.getElementById("exposure");
  var clock = document.getElementById("stretch-clock");
  if (!box || !clock || !box.hasAttribute("data-stretch-ms")) {
    return;
  }
  var reminder = document.getElementById("break-reminder");
  var base = Number(box.getAttribute("data-stretch-ms")) || 0;
  var limit = Number(box.getAttribute("data-break-after-ms")) || 0;
  var loaded = Date.now();
  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }
  function tick() {
    var ms = base + Math.max(0, Date.now() - loaded);
    var seconds = Math.floor(ms / 1000);
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor(seconds / 60) % 60;
    clock.textContent = (hours > 0 ? hours + " h " : "") + minutes + " min " +
      two(seconds % 60) + " s";
    if (limit > 0 && ms >= limit && reminder) {
      reminder.hidden = false;
    }
  }
  tick();
  window.setInterval(tick, 1000);
})();
