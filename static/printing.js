// Print jobs of a sale or a day's report: list them, print (a copy), retry a failed one.
(function () {
  "use strict";

  var IPOS = window.IPOS;
  var fill = IPOS.fill;
  var newKey = IPOS.newKey;
  var call = IPOS.call;

  function setUp(panel) {
    var d = panel.dataset;
    var list = panel.querySelector("[data-print-jobs]");
    var message = panel.querySelector("[data-print-message]");
    var button = panel.querySelector("[data-print]");
    var timer = null;

    function say(text, kind) {
      message.textContent = text;
      message.className = "print-message" + (kind ? " status-" + kind : "");
    }

    function label(job) {
      var kind = { receipt: d.labelReceipt, copy: d.labelCopy, report: d.labelReport }[job.kind] || job.kind;
      var state = {
        queued: d.msgQueued,
        sending: d.msgSending,
        printed: d.msgPrinted,
        failed: fill(d.msgFailed, { error: job.error_message || "" }),
      }[job.status] || job.status;
      return "#" + job.id + " " + kind + " · " + state;
    }

    function render(jobs) {
      list.textContent = "";
      var busy = false;
      jobs.forEach(function (job) {
        var item = document.createElement("li");
        item.dataset.jobId = job.id;
        item.dataset.status = job.status;
        item.className = "print-job print-" + job.status;
        item.appendChild(document.createTextNode(label(job)));
        if (job.status === "failed") {
          var retry = document.createElement("button");
          retry.type = "button";
          retry.className = "button-small";
          retry.textContent = d.labelRetry;
          retry.dataset.retry = job.id;
          retry.addEventListener("click", function () { retryJob(job.id); });
          item.appendChild(document.createTextNode(" "));
          item.appendChild(retry);
        }
        if (job.status === "queued" || job.status === "sending") busy = true;
        list.appendChild(item);
      });
      // Poll while something is on its way; a settled list needs no traffic.
      clearTimeout(timer);
      if (busy) timer = setTimeout(load, 2000);
    }

    function load() {
      call(d.jobsUrl, "GET", d.csrf)
        .then(function (result) {
          if (result.status === 200) render(result.data.jobs || []);
        })
        .catch(function () { say(d.msgNetwork, "error"); });
    }

    function retryJob(id) {
      call(d.retryUrl.replace("/0/retry", "/" + id + "/retry"), "POST", d.csrf)
        .then(function (result) {
          if (result.status === 200) say(d.msgRequested, "ok");
          else say(fill(d.msgRefused, { detail: result.data.detail || result.status }), "error");
          load();
        })
        .catch(function () { say(d.msgNetwork, "error"); });
    }

    var pendingKey = null;
    button.addEventListener("click", function () {
      // One key per press, kept until the server answers: a lost answer never prints twice.
      pendingKey = pendingKey || newKey();
      button.disabled = true;
      call(d.printUrl, "POST", d.csrf, { idempotency_key: pendingKey })
        .then(function (result) {
          pendingKey = null;
          if (result.status === 201) say(d.msgRequested, "ok");
          else say(fill(d.msgRefused, { detail: result.data.detail || result.status }), "error");
          load();
        })
        .catch(function () { say(d.msgNetwork, "error"); })
        .then(function () { button.disabled = false; });
    });
    load();
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-print-panel]"), setUp);
})();
