// The customer display: mirrors the counter window of this browser over a BroadcastChannel.
(function () {
  "use strict";

  var root = document.querySelector("[data-display]");
  if (!root || !window.BroadcastChannel || !window.IPOS) return;
  var d = root.dataset;
  var labels = root.querySelector("template[data-display-balance-labels]").dataset;
  var customerBox = root.querySelector("[data-display-customer]");
  var body = root.querySelector("[data-display-lines]");
  var thanks = root.querySelector("[data-display-thanks]");

  var fill = window.IPOS.fill;

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
  }

  function show(snap) {
    root.dataset.state = snap.state;
    customerBox.textContent = snap.customer
      ? snap.customer.name + (snap.customer.village ? " · " + snap.customer.village : "")
      : d.msgWelcome;
    body.textContent = "";
    snap.lines.forEach(function (line) {
      var row = document.createElement("tr");
      cell(row, line.name);
      cell(row, fill(d.msgLine, { qty: line.qty, each: line.each }), "num");
      cell(row, String(line.points), "num");
      body.appendChild(row);
    });
    root.querySelector("[data-display-total]").textContent = snap.total;
    var done = snap.state === "done" && snap.balance_after !== null;
    var balance = root.querySelector("[data-display-balance]");
    var label = root.querySelector("[data-display-balance-label]");
    if (done) {
      label.textContent = labels.after;
      balance.textContent = snap.balance_after;
    } else if (snap.customer) {
      label.textContent = labels.after;
      balance.textContent = Math.max(snap.customer.spendable - snap.total, 0);
    } else {
      label.textContent = labels.before;
      balance.textContent = "–";
    }
    thanks.hidden = !done;
    if (done) thanks.textContent = fill(d.msgThanks, { receipt_no: snap.receipt_no });
  }

  var channel = new BroadcastChannel("ipos-counter-" + d.shopCode);
  channel.onmessage = function (event) {
    if (event.data && event.data.type === "counter") show(event.data.snapshot);
  };
  // A display opened after the counter asks for what the counter shows now.
  channel.postMessage({ type: "hello" });
})();
