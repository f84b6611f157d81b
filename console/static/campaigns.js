// Campaign delivery charts (console/templates/campaigns/delivery.html), drawn by the vendored
// Chart.js 4 from the page's stats.json (push/reports.py stats()); no inline script (CSP).
// While the campaign is still sending the figures are fetched again every 5 seconds.
(function () {
  "use strict";
  var REFRESH_MS = 5000;

  function reasonLabel(r) {
    var head = r.errcode !== null && r.errcode !== undefined ? r.errcode + " " : "";
    return head + (r.reason || r.status);
  }

  function minutesData(stats) {
    var points = stats.per_minute || [];
    return {
      labels: points.map(function (p) { return p.minute.slice(11, 16); }),
      datasets: [
        { label: "已发送", data: points.map(function (p) { return p.sent; }), borderColor: "#1a7f37", backgroundColor: "#1a7f37" },
        { label: "失败", data: points.map(function (p) { return p.failed; }), borderColor: "#b3261e", backgroundColor: "#b3261e" },
        { label: "结果未知", data: points.map(function (p) { return p.unknown; }), borderColor: "#9a6700", backgroundColor: "#9a6700" }
      ]
    };
  }

  function reasonsData(stats) {
    var groups = stats.reasons || [];
    return {
      labels: groups.map(reasonLabel),
      datasets: [{ label: "人数", data: groups.map(function (g) { return g.count; }), backgroundColor: "#0b5cad" }]
    };
  }

  function draw(box) {
    if (typeof window.Chart === "undefined") { return; }
    var url = box.getAttribute("data-stats-url");
    var minutes = null, reasons = null;

    function update() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (resp) { return resp.ok ? resp.json() : Promise.reject(resp.status); })
        .then(function (stats) {
          if (minutes === null) {
            minutes = new window.Chart(box.querySelector("#chart-minutes"), {
              type: "line", data: minutesData(stats),
              options: { responsive: true, maintainAspectRatio: false, animation: false,
                         scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
            });
            reasons = new window.Chart(box.querySelector("#chart-reasons"), {
              type: "bar", data: reasonsData(stats),
              options: { responsive: true, maintainAspectRatio: false, animation: false, indexAxis: "y",
                         plugins: { legend: { display: false } },
                         scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
            });
          } else {
            minutes.data = minutesData(stats); minutes.update();
            reasons.data = reasonsData(stats); reasons.update();
          }
          if (!stats.finished) { window.setTimeout(update, REFRESH_MS); }
        })
        .catch(function () { window.setTimeout(update, REFRESH_MS * 3); });
    }
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".charts[data-stats-url]").forEach(draw);
  });
})();
