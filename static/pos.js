// The counter: a keyboard-wedge scanner and the Enter key serve the whole queue.
//
// The counter is a state machine; `data-state` on [data-counter] always says which state:
//   waiting    no customer. Goods may be scanned; nothing can be confirmed.
//   serving    a good card was scanned: goods, quantities, Enter on the empty field confirms.
//   asking     another valid card came mid-cart: Enter switches (goods kept), Esc keeps.
//   confirming the sale is on its way with its key; the cart is frozen until the server
//              answers, and every retry reuses the key, so it is never charged twice.
//   done       the sale is shown read-only (receipt, balance, printer) until the next card.
// A bad card (invalid, unknown, revoked) in any state but confirming clears the customer
// (goods stay; after a sale, the sale's goods go too) and nothing is confirmed until a good
// card. Scans wait in one queue (lib.js): none is dropped, none reordered.
(function () {
  "use strict";

  var root = document.querySelector("[data-counter]");
  if (!root || !window.IPOS) return;
  var IPOS = window.IPOS;
  var fill = IPOS.fill;
  var d = root.dataset;
  var scan = root.querySelector("[data-scan]");
  var statusBox = root.querySelector("[data-status]");
  var body = root.querySelector("[data-lines]");
  var template = root.querySelector("template[data-line-template]");
  var receiptBox = root.querySelector("[data-receipt]");
  var shortBox = root.querySelector("[data-shortfall]");
  var customerBox = root.querySelector("[data-customer]");
  var askBox = root.querySelector("[data-ask]");
  var stockBox = root.querySelector("[data-stock-warning]");
  var printBox = root.querySelector("[data-print-state]");
  var isManager = d.manager === "true";

  var TIMEOUT_MS = 8000;
  var AUTO_RETRIES = 3;

  var WAITING = "waiting";
  var SERVING = "serving";
  var ASKING = "asking";
  var CONFIRMING = "confirming";
  var DONE = "done";

  var state = {
    name: WAITING,
    customer: null, // {household_id, head_name, members, village_name, balance, floor, spendable}
    payload: null,
    lines: [], // {sku, barcode, name, each, qty, onHand}
    selected: -1,
    // The key of a sale whose outcome is unknown: every retry reuses it.
    pendingKey: null,
    sending: false,
    sale: null, // the committed sale shown in `done`
    candidate: null, // {customer, payload} while asking
    answer: null, // resolves the question while asking
    // Bumped whenever the customer is replaced or cleared: an Enter typed before that
    // cannot confirm the sale for whoever is on screen after it.
    epoch: 0,
  };
  // Normalized code -> {product, at}: a second scan of the same goods counts up without
  // the server. On-hand goes stale as other counters sell, so an entry lives briefly.
  var lookups = {};
  var LOOKUP_TTL_MS = 30000;

  function forget(skus) {
    Object.keys(lookups).forEach(function (code) {
      if (skus.indexOf(lookups[code].product.sku) >= 0) delete lookups[code];
    });
  }

  // --- what the clerk (and the customer display) sees ----------------------------------

  function say(text, kind, sound) {
    statusBox.textContent = text;
    statusBox.className = "counter-status" + (kind ? " status-" + kind : "");
    if (sound) IPOS.sound.play(sound);
  }

  function refuse(text) {
    say(text, "error", "refuse");
  }

  function setState(name) {
    state.name = name;
    root.dataset.state = name;
  }

  function total() {
    return state.lines.reduce(function (sum, line) { return sum + line.each * line.qty; }, 0);
  }

  function short(line) {
    return line.onHand !== null && line.onHand !== undefined && line.qty > line.onHand;
  }

  function renderLines(locked) {
    body.textContent = "";
    state.lines.forEach(function (line, index) {
      var row = template.content.firstElementChild.cloneNode(true);
      row.dataset.sku = line.sku;
      row.querySelector("[data-name]").textContent = line.name;
      row.querySelector("[data-each]").textContent = line.each;
      var qty = row.querySelector("[data-qty]");
      qty.value = line.qty;
      qty.disabled = locked;
      row.querySelector("[data-points]").textContent = line.each * line.qty;
      var remove = row.querySelector("[data-remove]");
      remove.disabled = locked;
      remove.hidden = locked;
      if (index === state.selected && !locked) row.classList.add("selected");
      if (short(line) && !locked) {
        row.classList.add(d.allowNegative === "true" ? "below-stock" : "out-of-stock");
        row.querySelector("[data-stock-note]").textContent = fill(d.labelOnHand, {
          on_hand: line.onHand,
        });
      }
      body.appendChild(row);
    });
  }

  function render() {
    var locked = state.name === DONE || state.name === CONFIRMING;
    root.classList.toggle("counter-locked", locked);
    renderLines(locked);
    var sum = state.sale ? state.sale.total_points : total();
    root.querySelector("[data-total]").textContent = sum;
    var remaining = root.querySelector("[data-remaining]");
    shortBox.hidden = true;
    if (state.name === DONE && state.sale) {
      remaining.textContent = state.customer ? state.customer.spendable : state.sale.balance_after;
    } else if (state.customer) {
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
      // Another shop's counter: the points kept for the home shop's node, said plainly.
      customerBox.querySelector("[data-reserved]").textContent = c.reserved || 0;
      customerBox.querySelector("[data-reserved-for]").textContent = c.reserved_for || "";
      customerBox.querySelector("[data-reserved-box]").hidden = !c.reserved;
    }
    askBox.hidden = state.name !== ASKING;
    if (state.name !== DONE) {
      receiptBox.hidden = true;
      printBox.hidden = true;
    }
    broadcast();
  }

  // The customer display (/counter/display) in another window of this browser hears every
  // change at once: no server round trip, nothing to click there.
  var channel = window.BroadcastChannel ? new BroadcastChannel("ipos-counter-" + d.shopCode) : null;

  function snapshot() {
    var c = state.customer;
    return {
      state: state.name,
      customer: c ? { name: c.head_name, village: c.village_name, spendable: c.spendable } : null,
      lines: state.lines.map(function (line) {
        return { name: line.name, each: line.each, qty: line.qty, points: line.each * line.qty };
      }),
      total: state.sale ? state.sale.total_points : total(),
      receipt_no: state.sale ? state.sale.receipt_no : null,
      balance_after: state.sale ? state.sale.balance_after : null,
    };
  }

  function broadcast() {
    if (channel) channel.postMessage({ type: "counter", snapshot: snapshot() });
  }

  if (channel) {
    channel.onmessage = function (event) {
      if (event.data && event.data.type === "hello") broadcast();
    };
  }

  // --- the customer --------------------------------------------------------------------

  function clearSale() {
    state.sale = null;
    receiptBox.hidden = true;
    receiptBox.textContent = "";
    printBox.hidden = true;
    stockBox.hidden = true;
    stopPrintWatch();
  }

  function startFresh() {
    // After a sale, the next card starts an empty cart.
    clearSale();
    state.lines = [];
    state.selected = -1;
    state.customer = null;
    state.payload = null;
  }

  function clearCustomer() {
    if (state.customer) state.epoch += 1;
    state.customer = null;
    state.payload = null;
  }

  function lookUpCard(code) {
    return IPOS.call(d.customerUrl, "POST", d.csrf, { card_payload: code });
  }

  function shortCode(code) {
    return code.length > 16 ? code.slice(0, 16) + "…" : code;
  }

  function scanCard(code) {
    if (state.name === CONFIRMING) {
      refuse(d.msgPending);
      return null;
    }
    return lookUpCard(code).then(
      function (result) {
        if (result.status !== 200) {
          // A bad card never leaves the previous customer loaded behind its message.
          if (state.name === DONE) startFresh();
          clearCustomer();
          setState(WAITING);
          render();
          refuse(fill(d.msgBadCard, { detail: (result.data && result.data.detail) || result.status }));
          return null;
        }
        var found = result.data;
        if (state.name === DONE) startFresh();
        var current = state.customer;
        if (!current) {
          state.customer = found;
          state.payload = code;
          setState(SERVING);
          render();
          say(fill(d.msgCustomer, { name: found.head_name }), "ok", "beep");
          return null;
        }
        if (current.household_id === found.household_id) {
          state.customer = found;
          state.payload = code;
          render();
          say(fill(d.msgSameCustomer, { name: found.head_name }), "ok", "beep");
          return null;
        }
        state.epoch += 1;
        if (!state.lines.length) {
          state.customer = found;
          state.payload = code;
          render();
          say(fill(d.msgSwitched, { name: found.head_name, previous: current.head_name }), "ok", "beep");
          return null;
        }
        return ask(found, code, current);
      },
      function () {
        refuse(fill(d.msgLookupFailed, { code: shortCode(code) }));
      }
    );
  }

  // A different valid card mid-cart: asked in one keystroke, never switched silently. The
  // queue waits for the answer, so scans typed meanwhile wait too, in order.
  function ask(found, code, current) {
    state.candidate = { customer: found, payload: code };
    setState(ASKING);
    askBox.querySelector("[data-ask-text]").textContent = fill(d.msgAskSwitch, {
      name: found.head_name,
      current: current.head_name,
    });
    render();
    say(fill(d.msgAsk, { name: found.head_name }), "warn", "refuse");
    return new Promise(function (resolve) {
      state.answer = function (switchTo) {
        state.answer = null;
        var chosen = state.candidate;
        state.candidate = null;
        state.epoch += 1;
        if (switchTo) {
          state.customer = chosen.customer;
          state.payload = chosen.payload;
          say(fill(d.msgSwitched, { name: chosen.customer.head_name, previous: current.head_name }), "ok", "beep");
        } else {
          say(fill(d.msgKept, { name: state.customer.head_name }), "ok");
        }
        setState(SERVING);
        render();
        resolve();
      };
    });
  }

  // --- goods -----------------------------------------------------------------------------

  function lineIndex(sku) {
    for (var i = 0; i < state.lines.length; i++) {
      if (state.lines[i].sku === sku) return i;
    }
    return -1;
  }

  function warnStock(line) {
    var negative = d.allowNegative === "true";
    var message = fill(negative ? d.msgStockNegative : d.msgStockOut, {
      name: line.name,
      on_hand: line.onHand,
    });
    stockBox.hidden = false;
    stockBox.dataset.sku = line.sku;
    stockBox.classList.toggle("stock-negative", negative);
    stockBox.querySelector("[data-stock-text]").textContent = message;
    var form = stockBox.querySelector("[data-receive-form]");
    if (form) {
      form.hidden = !isManager;
      form.querySelector("[data-receive-qty]").value = String(Math.max(line.qty - line.onHand, 1));
      // One key per warning: a retry after a lost answer never records the goods twice.
      form.dataset.key = IPOS.newKey();
    }
    say(message, "warn", "warn");
  }

  function added(index) {
    var line = state.lines[index];
    state.selected = index;
    render();
    if (short(line)) {
      warnStock(line);
    } else {
      if (stockBox.dataset.sku === line.sku) stockBox.hidden = true;
      say(fill(d.msgAdded, { name: line.name, qty: line.qty }), "ok", "beep");
    }
  }

  function addProduct(product, code) {
    var index = lineIndex(product.sku);
    if (index >= 0) {
      state.lines[index].qty += 1;
      if (typeof product.on_hand === "number") state.lines[index].onHand = product.on_hand;
    } else {
      state.lines.push({
        sku: product.sku,
        barcode: product.barcode || code,
        name: product.name,
        each: product.points_price,
        qty: 1,
        onHand: typeof product.on_hand === "number" ? product.on_hand : null,
      });
      index = state.lines.length - 1;
    }
    added(index);
  }

  function scanGoods(code) {
    if (state.name === DONE) {
      refuse(fill(d.msgSaleClosed, { code: shortCode(code) }));
      return null;
    }
    if (state.name === CONFIRMING) {
      refuse(fill(d.msgPendingGoods, { code: shortCode(code) }));
      return null;
    }
    var known = lookups[code];
    if (known && Date.now() - known.at < LOOKUP_TTL_MS) {
      addProduct(known.product, code);
      return null;
    }
    var options = { headers: { Accept: "application/json" }, credentials: "same-origin" };
    return IPOS.getJson(d.goodsUrl + encodeURIComponent(code), options).then(
      function (result) {
        if (result.status === 200 && result.data.active !== false) {
          lookups[code] = { product: result.data, at: Date.now() };
          if (state.name === DONE || state.name === CONFIRMING) return scanGoods(code);
          addProduct(result.data, code);
        } else {
          refuse(fill(d.msgUnknown, { code: shortCode(code) }));
        }
      },
      function () {
        refuse(fill(d.msgLookupFailed, { code: shortCode(code) }));
      }
    );
  }

  function editable() {
    if (state.name === DONE) {
      refuse(d.msgSaleLocked);
      return false;
    }
    if (state.name === CONFIRMING) {
      refuse(state.sending ? d.msgCartFrozen : d.msgPending);
      return false;
    }
    return state.name !== ASKING;
  }

  function setQty(index, qty) {
    if (!editable() || !state.lines[index]) return;
    if (!(qty >= 1)) qty = 1;
    state.lines[index].qty = Math.min(qty, 100000);
    added(index);
  }

  function removeLine(index) {
    if (!editable() || !state.lines[index]) return;
    var gone = state.lines.splice(index, 1)[0];
    if (stockBox.dataset.sku === gone.sku) stockBox.hidden = true;
    state.selected = Math.min(state.selected, state.lines.length - 1);
    render();
    say(fill(d.msgRemoved, { name: gone.name }), "ok");
  }

  // --- the sale ------------------------------------------------------------------------

  function showReceipt(sale) {
    // The committed sale at once; the server's own layout (what the printer prints) follows.
    receiptBox.textContent = fill(d.msgReceiptShort, {
      receipt_no: sale.receipt_no,
      total: sale.total_points,
      balance: sale.balance_after,
    });
    receiptBox.hidden = false;
    fetch(d.receiptUrl.replace("/0/", "/" + sale.sale_id + "/") + "?format=text", {
      credentials: "same-origin",
      headers: { Accept: "text/plain" },
    })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text && state.sale === sale) receiptBox.textContent = text;
      })
      .catch(function () {});
  }

  function finish(sale) {
    state.pendingKey = null;
    state.sending = false;
    state.sale = sale;
    var before = state.customer.spendable;
    state.customer.balance = sale.balance_after;
    // What the county keeps back for the village's home shop node stays kept back.
    state.customer.spendable = Math.max(
      sale.balance_after - state.customer.floor - (state.customer.reserve_cap || 0), 0);
    // Offline, what is left is the node's allowance less this sale, whatever the balance.
    if (sale.offline) state.customer.spendable = Math.max(before - sale.total_points, 0);
    state.customer.reserved = Math.min(
      state.customer.reserve_cap || 0, Math.max(sale.balance_after - state.customer.floor, 0));
    stockBox.hidden = true;
    forget(state.lines.map(function (line) { return line.sku; }));
    setState(DONE);
    render();
    showReceipt(sale);
    say(d.msgDone, "ok", "chime");
    watchPrint(sale);
  }

  function send(attempt) {
    state.sending = true;
    setState(CONFIRMING);
    render();
    say(attempt > 1 ? fill(d.msgRetrying, { attempt: attempt - 1 }) : d.msgSending, "busy");
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, TIMEOUT_MS);
    var payload = {
      card_payload: state.payload,
      lines: state.lines.map(function (line) { return { sku: line.sku, qty: line.qty }; }),
      idempotency_key: state.pendingKey,
    };
    return IPOS.call(d.salesUrl, "POST", d.csrf, payload, controller ? controller.signal : undefined).then(
      function (result) {
        clearTimeout(timer);
        if (result.status === 201) return finish(result.data);
        // The server may or may not have committed: only the same key may try again.
        if (result.status >= 500 || result.status === 0) return retryLater(attempt);
        // A refusal: nothing was recorded, so the next try is a new request.
        state.pendingKey = null;
        state.sending = false;
        setState(SERVING);
        render();
        var data = result.data || {};
        if (data.code === "insufficient_points" && data.shortfall) {
          shortBox.textContent = fill(d.msgShort, { shortfall: data.shortfall });
          shortBox.hidden = false;
        }
        refuse(fill(d.msgRefused, { detail: data.detail || result.status }));
      },
      function () {
        clearTimeout(timer);
        return retryLater(attempt);
      }
    );
  }

  function retryLater(attempt) {
    if (attempt > AUTO_RETRIES) {
      state.sending = false;
      refuse(d.msgGaveUp);
      return null;
    }
    refuse(fill(d.msgRetrying, { attempt: attempt }));
    return new Promise(function (resolve) {
      setTimeout(function () { resolve(send(attempt + 1)); }, 1000 * attempt);
    });
  }

  function confirmSale(epoch) {
    if (state.name === DONE) return say(d.msgScanNext, "info");
    if (state.name === CONFIRMING) {
      // The outcome is unknown after the automatic retries: the same key goes again.
      if (!state.sending && state.pendingKey) return send(1);
      return null;
    }
    if (epoch !== state.epoch) return refuse(d.msgCustomerChanged);
    if (!state.customer) return refuse(state.lines.length ? d.msgCardFirst : d.msgScanCard);
    if (!state.lines.length) return refuse(d.msgNoLines);
    if (total() > state.customer.spendable) {
      render();
      return refuse(fill(d.msgShort, { shortfall: total() - state.customer.spendable }));
    }
    if (d.allowNegative !== "true") {
      var missing = state.lines.filter(short)[0];
      if (missing) return refuse(fill(d.msgStockOut, { name: missing.name, on_hand: missing.onHand }));
    }
    state.pendingKey = IPOS.newKey();
    return send(1);
  }

  // --- the printer of this sale --------------------------------------------------------

  var printTimer = null;

  function stopPrintWatch() {
    clearTimeout(printTimer);
    printTimer = null;
  }

  function showPrint(sale, data) {
    if (state.sale !== sale) return;
    printBox.hidden = false;
    printBox.dataset.printState = data.state;
    printBox.dataset.jobId = data.job_id || "";
    printBox.querySelector("[data-print-message]").textContent = data.message || "";
    printBox.querySelector("[data-print-retry]").hidden = data.state !== "failed" || !data.job_id;
  }

  // After a sale the clerk always sees what became of its receipt: printed, failed and why
  // (with Retry), or no printer set up. Polled briefly, then now and then.
  function watchPrint(sale, tries) {
    stopPrintWatch();
    if (!d.printUrl) return;
    tries = tries || 0;
    var url = d.printUrl.replace("/0/", "/" + sale.sale_id + "/");
    IPOS.getJson(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (result) {
        if (state.sale !== sale) return;
        if (result.status === 200) showPrint(sale, result.data);
        var settled = result.status === 200 && /^(printed|no_printer|disabled)$/.test(result.data.state);
        if (!settled) {
          printTimer = setTimeout(function () { watchPrint(sale, tries + 1); }, tries < 20 ? 500 : 5000);
        }
      })
      .catch(function () {
        if (state.sale === sale) printTimer = setTimeout(function () { watchPrint(sale, tries + 1); }, 5000);
      });
  }

  printBox.querySelector("[data-print-retry]").addEventListener("click", function () {
    var jobId = printBox.dataset.jobId;
    var sale = state.sale;
    if (!jobId || !sale) return;
    IPOS.call(d.retryUrl.replace("/0/retry", "/" + jobId + "/retry"), "POST", d.csrf)
      .then(function (result) {
        if (result.status === 200) say(d.msgPrintRetried, "ok");
        else refuse(fill(d.msgRefused, { detail: (result.data && result.data.detail) || result.status }));
      })
      .catch(function () {})
      .then(function () {
        scan.focus();
        if (state.sale === sale) watchPrint(sale);
      });
  });

  // --- a manager records the goods in hand, without leaving the sale -------------------

  var receiveForm = stockBox.querySelector("[data-receive-form]");
  if (receiveForm) {
    receiveForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var sku = stockBox.dataset.sku;
      var qty = parseInt(IPOS.normalize(receiveForm.querySelector("[data-receive-qty]").value), 10);
      var button = receiveForm.querySelector("button");
      if (!sku || !(qty >= 1)) return;
      button.disabled = true;
      queue.enqueue(function () {
        return IPOS.call(d.receiveUrl, "POST", d.csrf, {
          reference: d.receiveReference,
          lines: [{ sku: sku, qty: qty }],
          idempotency_key: receiveForm.dataset.key,
        })
          .then(function (result) {
            if (result.status !== 201) {
              refuse(fill(d.msgReceiveFailed, { detail: (result.data && result.data.detail) || result.status }));
              return;
            }
            var index = lineIndex(sku);
            var line = state.lines[index];
            if (line && line.onHand !== null) line.onHand += qty;
            forget([sku]);
            stockBox.hidden = true;
            render();
            say(fill(d.msgReceived, { name: line ? line.name : sku, qty: qty }), "ok", "beep");
          })
          .catch(function () {
            refuse(fill(d.msgReceiveFailed, { detail: "" }));
          })
          .then(function () {
            button.disabled = false;
            scan.focus();
          });
      });
    });
  }

  // --- keys ----------------------------------------------------------------------------

  var queue = IPOS.scanQueue(
    scan,
    function (code) {
      if (state.name === ASKING && !code && state.answer) {
        state.answer(true);
        return null;
      }
      if (!code) {
        var epoch = state.epoch;
        return function () { return confirmSale(epoch); };
      }
      if (/^[*×]\d{1,6}$/.test(code)) {
        var qty = parseInt(code.slice(1), 10);
        return function () { setQty(state.selected, qty); };
      }
      if (IPOS.isCard(code)) return function () { return scanCard(code.toUpperCase()); };
      return function () { return scanGoods(code); };
    },
    root
  );

  scan.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && state.name === ASKING && state.answer) {
      event.preventDefault();
      state.answer(false);
      return;
    }
    // Line keys only act on an empty field: a payload may itself contain "-" or "+".
    if (scan.value) return;
    var key = event.key;
    if (key === "ArrowUp" || key === "ArrowDown") {
      event.preventDefault();
      queue.enqueue(function () {
        if (state.name === DONE || state.name === CONFIRMING || !state.lines.length) return;
        var step = key === "ArrowUp" ? -1 : 1;
        state.selected = Math.max(0, Math.min(state.lines.length - 1, state.selected + step));
        render();
      });
    } else if (key === "+" || key === "-") {
      event.preventDefault();
      queue.enqueue(function () {
        if (!editable()) return;
        var line = state.lines[state.selected];
        if (line) setQty(state.selected, line.qty + (key === "+" ? 1 : -1));
      });
    } else if (key === "Delete") {
      event.preventDefault();
      queue.enqueue(function () { removeLine(state.selected); });
    } else if (key === "Escape") {
      event.preventDefault();
      queue.enqueue(function () {
        if (state.name === CONFIRMING) return refuse(state.sending ? d.msgCartFrozen : d.msgPending);
        startFresh();
        clearCustomer();
        setState(WAITING);
        render();
        say(d.msgNext, "info");
      });
    }
  });

  // Touch: the quantity box and ✕ go through the same queue and the same rules.
  body.addEventListener("change", function (event) {
    var row = event.target.closest("tr[data-sku]");
    if (!row || !event.target.matches("[data-qty]")) return;
    var sku = row.dataset.sku;
    var qty = parseInt(IPOS.normalize(event.target.value), 10);
    queue.enqueue(function () {
      var index = lineIndex(sku);
      setQty(index, qty);
      if (index >= 0 && state.lines[index]) event.target.value = state.lines[index].qty;
    });
    scan.focus();
  });
  body.addEventListener("click", function (event) {
    var button = event.target.closest("[data-remove]");
    if (!button) return;
    var sku = button.closest("tr[data-sku]").dataset.sku;
    queue.enqueue(function () { removeLine(lineIndex(sku)); });
    scan.focus();
  });

  // The scan field always has focus: a click elsewhere gives it back, except in a form field.
  document.addEventListener("click", function (event) {
    if (!event.target.closest("input, select, textarea, button, a")) scan.focus();
  });
  document.addEventListener("focusout", function () {
    setTimeout(function () {
      var active = document.activeElement;
      if (!active || active === document.body) scan.focus();
    }, 0);
  });

  // --- the shop's printer, as before: its state, and the latest receipt that failed ------

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
        error: failedJob.error_message || "",
      });
    }
  }

  function pollPrinter(delay) {
    clearTimeout(printerTimer);
    printerTimer = setTimeout(function () {
      IPOS.getJson(d.printerUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
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
      IPOS.call(d.retryUrl.replace("/0/retry", "/" + failedJob.id + "/retry"), "POST", d.csrf)
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

  // --- behind a shop node: is the line to the county up, and what waits for it ----------

  var nodeBox = root.querySelector("[data-node-banner]");
  var NODE_POLL_MS = 3000;
  var nodeSeenAway = false;

  function duration(since) {
    var minutes = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 60000));
    if (minutes < 60) return fill(nodeBox.dataset.unitMinutes, { n: minutes });
    return fill(nodeBox.dataset.unitHours, { h: Math.floor(minutes / 60), n: minutes % 60 });
  }

  function clock(at) {
    var when = at ? new Date(at) : new Date();
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return pad(when.getHours()) + ":" + pad(when.getMinutes());
  }

  function showNode(data) {
    var text = nodeBox.querySelector("[data-node-text]");
    var pending = data.pending_sales || 0;
    var state;
    if (!data.online) {
      nodeSeenAway = true;
      state = "offline";
      text.textContent = fill(nodeBox.dataset.msgOffline, {
        duration: data.offline_since ? duration(data.offline_since) : fill(nodeBox.dataset.unitMinutes, { n: 0 }),
        pending: pending,
      });
    } else if (pending > 0) {
      nodeSeenAway = true;
      state = "syncing";
      text.textContent = fill(nodeBox.dataset.msgSyncing, { pending: pending });
    } else if (nodeSeenAway) {
      state = "synced";
      text.textContent = fill(nodeBox.dataset.msgSynced, { time: clock(data.last_sync_at) });
    }
    nodeBox.hidden = !state;
    nodeBox.dataset.state = state || "online";
    var line = data.online ? "online" : "offline";
    if (root.dataset.line && root.dataset.line !== line) refreshToken();
    root.dataset.line = line;
  }

  // The page's CSRF token is that of whoever rendered it, the county or the node; when
  // the line changes, the other one answers next: take its token from a fresh copy of
  // this page, so the queue goes on without a reload (and without losing the cart).
  function refreshToken() {
    fetch(window.location.pathname + window.location.search, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-counter]");
        if (fresh && fresh.dataset.csrf) d.csrf = fresh.dataset.csrf;
      })
      .catch(function () {});
  }

  function pollNode(delay) {
    setTimeout(function () {
      IPOS.getJson(nodeBox.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (result) {
          // The county itself has no /node/status: no node, no banner, no more asking.
          if (result.status !== 200 || !result.data || typeof result.data.online !== "boolean") return false;
          showNode(result.data);
          return true;
        })
        .catch(function () { return true; })
        .then(function (again) { if (again) pollNode(NODE_POLL_MS); });
    }, delay);
  }

  if (nodeBox) pollNode(0);

  setState(WAITING);
  render();
  scan.focus();
})();
