// The counter: a keyboard-wedge scanner and the Enter key serve the whole queue.
(function () {
  "use strict";

  var root = document.querySelector("[data-counter]");
  if (!root) return;
  var d = root.dataset;
  var scan = root.querySelector("[data-scan]");
  var statusBox = root.querySelector("[data-status]");
  var body = root.querySelector("[data-lines]");
  var template = root.querySelector("template[data-line-template]");
  var receiptBox = root.querySelector("[data-receipt]");
  var shortBox = root.querySelector("[data-shortfall]");
  var customerBox = root.querySelector("[data-customer]");

  var TIMEOUT_MS = 8000;
  var AUTO_RETRIES = 3;

  var state = {
    customer: null, // {household_id, head_name, members, village_name, balance, floor, spendable}
    payload: null,
    lines: [], // {sku, barcode, name, each, qty}
    selected: -1,
    // The key of a sale whose outcome is unknown: every retry reuses it, and the cart is
    // frozen until the server answers, so a lost answer can never become a second charge.
    pendingKey: null,
    busy: false,
    done: false,
  };

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (whole, key) {
      return key in values ? values[key] : whole;
    });
  }

  function say(text, kind) {
    statusBox.textContent = text;
    statusBox.className = "counter-status" + (kind ? " status-" + kind : "");
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) { return (b + 256).toString(16).slice(1); })
      .join("");
  }

  function total() {
    return state.lines.reduce(function (sum, line) { return sum + line.each * line.qty; }, 0);
  }

  function render() {
    body.textContent = "";
    state.lines.forEach(function (line, index) {
      var row = template.content.firstElementChild.cloneNode(true);
      row.dataset.sku = line.sku;
      row.querySelector("[data-name]").textContent = line.name;
      row.querySelector("[data-each]").textContent = line.each;
      row.querySelector("[data-qty]").value = line.qty;
      row.querySelector("[data-points]").textContent = line.each * line.qty;
      if (index === state.selected) row.classList.add("selected");
      row.querySelector("[data-qty]").addEventListener("change", function (event) {
        setQty(index, parseInt(event.target.value, 10));
        scan.focus();
      });
      row.querySelector("[data-remove]").addEventListener("click", function () {
        removeLine(index);
        scan.focus();
      });
      body.appendChild(row);
    });
    var sum = total();
    root.querySelector("[data-total]").textContent = sum;
    var remaining = root.querySelector("[data-remaining]");
    shortBox.hidden = true;
    if (state.customer) {
      var left = state.customer.spendable - sum;
      remaining.textContent = left >= 0 ? left : 0;
      if (left < 0) {
        shortBox.textContent = fill(d.msgShort, { shortfall: -left });
        shortBox.hidden = false;
      }
    } else {
      remaining.textContent = "–";
    }
    customerBox.hidden = !state.customer;
    if (state.customer) {
      var c = state.customer;
      customerBox.querySelector("[data-head]").textContent = c.head_name;
      customerBox.querySelector("[data-village]").textContent = c.village_name;
      customerBox.querySelector("[data-members]").textContent = c.members.join("、");
      customerBox.querySelector("[data-spendable]").textContent = c.spendable;
      customerBox.querySelector("[data-balance]").textContent = c.balance;
      customerBox.querySelector("[data-floor]").textContent = c.floor;
      customerBox.querySelector("[data-floor-box]").hidden = !c.floor;
    }
  }

  function frozen() {
    if (state.pendingKey) {
      say(d.msgPending, "error");
      return true;
    }
    return state.busy;
  }

  function startOverIfDone() {
    if (!state.done) return;
    state.done = false;
    state.customer = null;
    state.payload = null;
    state.lines = [];
    state.selected = -1;
    receiptBox.hidden = true;
    receiptBox.textContent = "";
  }

  function setQty(index, qty) {
    if (frozen() || !state.lines[index]) return;
    if (!(qty >= 1)) qty = 1;
    state.lines[index].qty = Math.min(qty, 100000);
    state.selected = index;
    render();
  }

  function removeLine(index) {
    if (frozen() || !state.lines[index]) return;
    state.lines.splice(index, 1);
    state.selected = Math.min(state.selected, state.lines.length - 1);
    render();
  }

  function getJson(url, options) {
    return fetch(url, options).then(function (response) {
      return response
        .json()
        .catch(function () { return {}; })
        .then(function (data) { return { status: response.status, data: data }; });
    });
  }

  function headers() {
    return {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": d.csrf,
    };
  }

  function scanCard(code) {
    state.busy = true;
    getJson(d.customerUrl, {
      method: "POST",
      headers: headers(),
      credentials: "same-origin",
      body: JSON.stringify({ card_payload: code }),
    })
      .then(function (result) {
        if (result.status === 200) {
          state.customer = result.data;
          state.payload = code;
          say(fill(d.msgCustomer, { name: result.data.head_name }), "ok");
        } else {
          say(fill(d.msgBadCard, { detail: result.data.detail || result.status }), "error");
        }
      })
      .catch(function () {
        say(fill(d.msgLookupFailed, { code: code.slice(0, 12) + "…" }), "error");
      })
      .then(function () {
        state.busy = false;
        render();
      });
  }

  function addProduct(product, code) {
    for (var i = 0; i < state.lines.length; i++) {
      if (state.lines[i].sku === product.sku) {
        state.lines[i].qty += 1;
        state.selected = i;
        say(fill(d.msgAdded, { name: product.name, qty: state.lines[i].qty }), "ok");
        render();
        return;
      }
    }
    state.lines.push({
      sku: product.sku,
      barcode: product.barcode || code,
      name: product.name,
      each: product.points_price,
      qty: 1,
    });
    state.selected = state.lines.length - 1;
    say(fill(d.msgAdded, { name: product.name, qty: 1 }), "ok");
    render();
  }

  function scanGoods(code) {
    // A known barcode counts up without asking the server again.
    for (var i = 0; i < state.lines.length; i++) {
      if (state.lines[i].barcode === code || state.lines[i].sku === code) {
        setQty(i, state.lines[i].qty + 1);
        say(fill(d.msgAdded, { name: state.lines[i].name, qty: state.lines[i].qty }), "ok");
        return;
      }
    }
    var options = { headers: { Accept: "application/json" }, credentials: "same-origin" };
    state.busy = true;
    getJson(d.barcodeUrl + encodeURIComponent(code), options)
      .then(function (result) {
        if (result.status === 404 && /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(code)) {
          return getJson(d.skuUrl + encodeURIComponent(code), options);
        }
        return result;
      })
      .then(function (result) {
        state.busy = false;
        if (result.status === 200 && result.data.active !== false) addProduct(result.data, code);
        else say(fill(d.msgUnknown, { code: code }), "error");
      })
      .catch(function () {
        state.busy = false;
        say(fill(d.msgLookupFailed, { code: code }), "error");
      });
  }

  function receiptText(sale) {
    var width = 32;
    function row(left, right) {
      left = String(left);
      right = String(right);
      var pad = width - left.length * 2 - right.length;
      return left + " ".repeat(Math.max(pad, 1)) + right;
    }
    var out = [d.shopName, d.labelReceipt + " " + sale.receipt_no];
    out.push(d.labelTime + " " + new Date().toLocaleString());
    out.push(d.labelHousehold + " " + (state.customer ? state.customer.head_name : sale.household_id));
    out.push("-".repeat(width));
    sale.lines.forEach(function (line) {
      out.push(line.name);
      out.push("  " + line.qty + " × " + line.points_each + " = " + line.points);
    });
    out.push("-".repeat(width));
    out.push(row(d.labelTotal, sale.total_points + " " + d.labelPoints));
    out.push(row(d.labelBalance, sale.balance_after + " " + d.labelPoints));
    return out.join("\n");
  }

  // The screen shows what the printer prints: the server's own layout of the committed
  // sale. The quick local text above stays if that request fails.
  function showServerReceipt(saleId) {
    if (!d.receiptUrl) return;
    fetch(d.receiptUrl.replace("/0/", "/" + saleId + "/") + "?format=text", {
      credentials: "same-origin",
      headers: { Accept: "text/plain" },
    })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text && state.done && !receiptBox.hidden) receiptBox.textContent = text;
      })
      .catch(function () {});
  }

  function send(attempt) {
    state.busy = true;
    say(attempt > 1 ? fill(d.msgRetrying, { attempt: attempt - 1 }) : d.msgSending, "busy");
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, TIMEOUT_MS);
    var payload = {
      card_payload: state.payload,
      lines: state.lines.map(function (line) { return { sku: line.sku, qty: line.qty }; }),
      idempotency_key: state.pendingKey,
    };
    getJson(d.salesUrl, {
      method: "POST",
      headers: headers(),
      credentials: "same-origin",
      body: JSON.stringify(payload),
      signal: controller ? controller.signal : undefined,
    })
      .then(function (result) {
        clearTimeout(timer);
        if (result.status === 201) {
          state.pendingKey = null;
          state.busy = false;
          state.done = true;
          state.customer.balance = result.data.balance_after;
          state.customer.spendable = Math.max(result.data.balance_after - state.customer.floor, 0);
          receiptBox.textContent = receiptText(result.data);
          receiptBox.hidden = false;
          showServerReceipt(result.data.sale_id);
          render();
          root.querySelector("[data-remaining]").textContent = state.customer.spendable;
          say(d.msgDone, "ok");
          if (printerBox && d.printerUrl) pollPrinter(1500);
        } else if (result.status >= 500 || result.status === 0) {
          // The server may or may not have committed: only the same key may try again.
          retryLater(attempt);
        } else {
          // A refusal: nothing was recorded, so the next try is a new request.
          state.pendingKey = null;
          state.busy = false;
          var data = result.data || {};
          if (data.code === "insufficient_points" && data.shortfall) {
            shortBox.textContent = fill(d.msgShort, { shortfall: data.shortfall });
            shortBox.hidden = false;
          }
          say(fill(d.msgRefused, { detail: data.detail || result.status }), "error");
        }
      })
      .catch(function () {
        clearTimeout(timer);
        retryLater(attempt);
      });
  }

  function retryLater(attempt) {
    if (attempt <= AUTO_RETRIES) {
      say(fill(d.msgRetrying, { attempt: attempt }), "error");
      setTimeout(function () { send(attempt + 1); }, 1000 * attempt);
    } else {
      state.busy = false;
      say(d.msgGaveUp, "error");
    }
  }

  function confirmSale() {
    if (state.busy) return;
    if (state.done) {
      startOverIfDone();
      render();
      say(d.msgNext);
      return;
    }
    if (!state.pendingKey) {
      if (!state.customer) return say(d.msgCardFirst, "error");
      if (!state.lines.length) return say(d.msgNoLines, "error");
      if (total() > state.customer.spendable) {
        render();
        return say(fill(d.msgShort, { shortfall: total() - state.customer.spendable }), "error");
      }
      state.pendingKey = newKey();
    }
    send(1);
  }

  scan.addEventListener("keydown", function (event) {
    var value = scan.value.trim();
    if (event.key === "Enter") {
      event.preventDefault();
      scan.value = "";
      if (!value) return confirmSale();
      if (state.busy) return;
      if (/^\*\d+$/.test(value)) return setQty(state.selected, parseInt(value.slice(1), 10));
      if (value.indexOf("IC1.") === 0) {
        if (state.pendingKey) return say(d.msgPending, "error");
        startOverIfDone();
        return scanCard(value);
      }
      if (frozen()) return;
      startOverIfDone();
      return scanGoods(value);
    }
    // Line keys only act on an empty field: a payload may itself contain "-" or "+".
    if (value) return;
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      event.preventDefault();
      var step = event.key === "ArrowUp" ? -1 : 1;
      state.selected = Math.max(0, Math.min(state.lines.length - 1, state.selected + step));
      render();
    } else if (event.key === "+" || event.key === "-") {
      event.preventDefault();
      var line = state.lines[state.selected];
      if (line) setQty(state.selected, line.qty + (event.key === "+" ? 1 : -1));
    } else if (event.key === "Delete") {
      event.preventDefault();
      removeLine(state.selected);
    } else if (event.key === "Escape") {
      event.preventDefault();
      if (frozen()) return;
      state.done = true;
      startOverIfDone();
      render();
      say(d.msgNext);
    }
  });

  // The scan field always has focus: a click elsewhere gives it back, except in a quantity box.
  document.addEventListener("click", function (event) {
    if (!event.target.closest("input, select, textarea, button, a")) scan.focus();
  });
  document.addEventListener("focusout", function () {
    setTimeout(function () {
      var active = document.activeElement;
      if (!active || active === document.body) scan.focus();
    }, 0);
  });
  // The printer's line: its state, and the latest receipt that did not print, with Retry.
  var printerBox = root.querySelector("[data-printer]");
  var printerTimer = null;
  var failedJob = null;
  var PRINTER_POLL_MS = 5000;

  function showPrinter(data) {
    var states = JSON.parse(d.printerStates || "{}");
    if (!data.configured) {
      printerBox.hidden = true;
      return;
    }
    printerBox.hidden = false;
    var stateName = (data.status && data.status.state) || "unknown";
    var badge = printerBox.querySelector("[data-printer-state]");
    badge.textContent = states[stateName] || stateName;
    badge.className = "printer-badge printer-" + stateName;
    printerBox.dataset.state = stateName;
    printerBox.querySelector("[data-printer-queued]").textContent = data.queued
      ? fill(d.msgPrintQueued, { count: data.queued })
      : "";
    failedJob = data.last_failed_job;
    var failedBox = printerBox.querySelector("[data-printer-failed]");
    failedBox.hidden = !failedJob;
    if (failedJob) {
      failedBox.dataset.jobId = failedJob.id;
      printerBox.querySelector("[data-printer-error]").textContent = fill(d.msgPrintFailed, {
        error: failedJob.last_error || "",
      });
    }
  }

  function pollPrinter(delay) {
    clearTimeout(printerTimer);
    printerTimer = setTimeout(function () {
      getJson(d.printerUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (result) {
          if (result.status === 200) showPrinter(result.data);
        })
        .catch(function () {})
        .then(function () { pollPrinter(PRINTER_POLL_MS); });
    }, delay);
  }

  if (printerBox && d.printerUrl) {
    printerBox.querySelector("[data-printer-retry]").addEventListener("click", function () {
      if (!failedJob) return;
      getJson(d.retryUrl.replace("/0/retry", "/" + failedJob.id + "/retry"), {
        method: "POST",
        headers: headers(),
        credentials: "same-origin",
      })
        .then(function (result) {
          if (result.status === 200) say(d.msgPrintRetried, "ok");
        })
        .catch(function () {})
        .then(function () {
          scan.focus();
          pollPrinter(1000);
        });
    });
    pollPrinter(0);
  }

  render();
  scan.focus();
})();
