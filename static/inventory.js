// Stock pages: a keyboard-wedge scanner types a code and presses Enter; no mouse needed.
(function () {
  "use strict";

  var IPOS = window.IPOS;
  var fill = IPOS.fill;

  function say(status, text, isError) {
    status.textContent = text;
    status.classList.toggle("scan-error", !!isError);
  }

  // Enter in a quantity box goes back to the scan field instead of submitting early.
  function keepEnterForScanning(form, scan) {
    form.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target !== scan && event.target.tagName === "INPUT") {
        event.preventDefault();
        scan.focus();
      }
    });
  }

  function submit(form, status, hasLines) {
    if (!hasLines()) {
      say(status, form.dataset.msgNolines, true);
      return;
    }
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  }

  // Receiving, transfers, damage: a known code adds a line or counts it up by data-step.
  function scanLines(form) {
    var scan = form.querySelector("[data-scan]");
    var status = form.querySelector("[data-scan-status]");
    var body = form.querySelector("[data-lines]");
    var template = form.querySelector("template[data-line-template]");
    var counter = form.querySelector("[data-line-count]");
    var step = parseInt(form.dataset.step || "1", 10);
    var known = {};

    function rows() {
      return body.querySelectorAll("tr[data-sku]");
    }

    function recount() {
      if (counter) counter.textContent = String(rows().length);
    }

    function lineFor(sku) {
      var found = null;
      rows().forEach(function (row) {
        if (row.dataset.sku === sku) found = row;
      });
      return found;
    }

    function matchSign(row) {
      var select = row.querySelector("select[name=reason]");
      var input = row.querySelector("input[type=number]");
      if (!select || !input) return;
      var sign = parseInt(select.options[select.selectedIndex].dataset.sign, 10);
      var value = parseInt(input.value, 10) || 0;
      if (value && (value < 0) !== (sign < 0)) input.value = String(-value);
    }

    function add(product) {
      var row = lineFor(product.sku);
      var input;
      if (row) {
        input = row.querySelector("input[type=number]");
        input.value = String((parseInt(input.value, 10) || 0) + step);
      } else {
        row = template.content.firstElementChild.cloneNode(true);
        row.dataset.sku = product.sku;
        row.firstElementChild.insertBefore(
          document.createTextNode(product.sku),
          row.firstElementChild.firstChild
        );
        row.querySelector("input[name=sku]").value = product.sku;
        row.querySelector("[data-name]").textContent = product.name;
        input = row.querySelector("input[type=number]");
        input.value = String(step);
        body.appendChild(row);
        recount();
      }
      body.querySelectorAll(".just-scanned").forEach(function (r) {
        r.classList.remove("just-scanned");
      });
      row.classList.add("just-scanned");
      var message = product.active === false ? form.dataset.msgRetired : form.dataset.msgAdded;
      say(status, fill(message, { name: product.name, qty: input.value }), false);
    }

    function fetchProduct(url) {
      return fetch(url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      }).then(function (response) {
        if (response.status === 404) return null;
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      });
    }

    function lookUp(code) {
      if (known[code]) return Promise.resolve(known[code]);
      var byBarcode = fetchProduct(form.dataset.barcodeUrl + encodeURIComponent(code));
      return byBarcode.then(function (product) {
        // Not a barcode in the catalogue: perhaps a SKU typed by hand.
        if (product || /^\d{8}$|^\d{13}$/.test(code)) return product;
        return fetchProduct(form.dataset.skuUrl + encodeURIComponent(code));
      }).then(function (product) {
        if (product) known[code] = product;
        return product;
      });
    }

    function handle(code) {
      return lookUp(code).then(
        function (product) {
          if (product) add(product);
          else say(status, fill(form.dataset.msgUnknown, { code: code }), true);
        },
        function () {
          say(status, fill(form.dataset.msgFailed, { code: code }), true);
        }
      );
    }

    // One scan after another, in the order scanned, however slow the network; Enter on the
    // empty field saves once the scans before it have landed.
    IPOS.scanQueue(
      scan,
      function (code) {
        if (!code) {
          return function () {
            submit(form, status, function () { return rows().length > 0; });
          };
        }
        return function () { return handle(code); };
      },
      form
    );

    body.addEventListener("click", function (event) {
      var button = event.target.closest("[data-remove]");
      if (!button) return;
      button.closest("tr").remove();
      recount();
      scan.focus();
    });
    body.addEventListener("change", function (event) {
      if (event.target.name === "reason") matchSign(event.target.closest("tr"));
    });
    keepEnterForScanning(form, scan);
  }

  // The stock-take sheet lists every product: a scan counts one more of the matching row.
  // Counts that differ from the books are shown first and saved on a second Enter.
  function scanCount(form) {
    var scan = form.querySelector("[data-scan]");
    var status = form.querySelector("[data-scan-status]");
    var rows = Array.prototype.slice.call(form.querySelectorAll(".count-sheet tr[data-sku]"));
    var review = form.querySelector("[data-count-review]");
    var reviewLines = form.querySelector("[data-review-lines]");
    var token = form.querySelector("[data-confirm-token]");
    // An Enter this soon after the differences appeared is a key bounce or a double press,
    // not someone who has read them.
    var SETTLE_MS = 400;
    var shownAt = 0;

    function counted() {
      return rows.some(function (row) {
        return row.querySelector("input[name=counted]").value !== "";
      });
    }

    // The counted lines in the sheet's order, against the books as the page was drawn.
    function lines() {
      var found = [];
      rows.forEach(function (row) {
        var text = row.querySelector("input[name=counted]").value.trim();
        if (text === "") return;
        found.push({
          sku: row.dataset.sku,
          name: row.querySelector("[data-name]").textContent,
          expected: parseInt(row.dataset.onHand, 10) || 0,
          // Digits only, as the server reads them; anything else is the server's to refuse.
          counted: /^[0-9]+$/.test(text) ? Number(text) : NaN,
        });
      });
      return found;
    }

    // Spelled exactly as inventory.views.count_token spells it on the server.
    function tokenOf(found) {
      return found.map(function (line) { return line.expected + ":" + line.counted; }).join(",");
    }

    function cell(tr, text, className) {
      var td = document.createElement("td");
      td.textContent = text;
      if (className) td.className = className;
      tr.appendChild(td);
    }

    function showReview(differing, spelled) {
      reviewLines.textContent = "";
      differing.forEach(function (line) {
        var tr = document.createElement("tr");
        var delta = line.counted - line.expected;
        tr.dataset.sku = line.sku;
        cell(tr, line.sku);
        cell(tr, line.name);
        cell(tr, String(line.expected), "num");
        cell(tr, String(line.counted), "num");
        cell(tr, (delta > 0 ? "+" : "") + delta, "num strong");
        reviewLines.appendChild(tr);
      });
      token.value = spelled;
      review.hidden = false;
      shownAt = Date.now();
      review.scrollIntoView({ block: "nearest" });
      say(status, fill(form.dataset.msgReview, { count: differing.length }), true);
    }

    function dropReview() {
      if (review.hidden && !token.value) return;
      review.hidden = true;
      token.value = "";
      say(status, form.dataset.msgChanged, false);
    }

    // May this submission go? Differences go only once shown, read, and still as shown.
    function mayGo() {
      var found = lines();
      if (found.some(function (line) { return !Number.isInteger(line.counted); })) {
        return true; // the server names what is not a whole number
      }
      var differing = found.filter(function (line) { return line.counted !== line.expected; });
      var spelled = tokenOf(found);
      if (!differing.length) {
        token.value = "";
        return true;
      }
      if (!review.hidden && token.value === spelled) {
        if (Date.now() - shownAt >= SETTLE_MS) return true;
        say(status, form.dataset.msgLook, true);
        return false;
      }
      showReview(differing, spelled);
      return false;
    }

    // In the capture phase on the document: a held-back submission never reaches the
    // form's own listeners (app.js would take it as sent and disable the buttons).
    document.addEventListener(
      "submit",
      function (event) {
        if (event.target !== form || mayGo()) return;
        event.preventDefault();
        event.stopPropagation();
        scan.focus();
      },
      true
    );

    form.addEventListener("input", function (event) {
      if (event.target.name === "counted") dropReview();
    });

    // Drawn by the server with differences to confirm: confirmable if the sheet still
    // says what they say.
    if (token.value) {
      if (!review.hidden && token.value === tokenOf(lines())) shownAt = Date.now();
      else dropReview();
    }

    function count(code) {
      // SKUs are matched without regard to case: a scanner with Caps Lock on types them too.
      var upper = code.toUpperCase();
      var row = rows.find(function (r) {
        return r.dataset.barcode === code || r.dataset.sku.toUpperCase() === upper;
      });
      if (!row) {
        say(status, fill(form.dataset.msgUnknown, { code: code }), true);
        return;
      }
      var input = row.querySelector("input[name=counted]");
      input.value = String((parseInt(input.value, 10) || 0) + 1);
      dropReview();
      rows.forEach(function (r) { r.classList.remove("just-scanned"); });
      row.classList.add("just-scanned");
      row.scrollIntoView({ block: "nearest" });
      var name = row.querySelector("[data-name]").textContent;
      say(status, fill(form.dataset.msgAdded, { name: name, qty: input.value }), false);
    }

    IPOS.scanQueue(
      scan,
      function (code) {
        if (!code) return function () { submit(form, status, counted); };
        return function () { count(code); };
      },
      form
    );
    keepEnterForScanning(form, scan);
  }

  document.querySelectorAll("form[data-scan-form]").forEach(scanLines);
  document.querySelectorAll("form[data-count-form]").forEach(scanCount);
})();
