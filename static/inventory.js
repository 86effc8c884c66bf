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
  function scanCount(form) {
    var scan = form.querySelector("[data-scan]");
    var status = form.querySelector("[data-scan-status]");
    var rows = Array.prototype.slice.call(form.querySelectorAll("tr[data-sku]"));

    function counted() {
      return rows.some(function (row) {
        return row.querySelector("input[name=counted]").value !== "";
      });
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
