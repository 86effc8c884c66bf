// Small progressive enhancements; every page also works without script.
(function () {
  "use strict";

  // Chromium applies `autofocus` at its next rendering update, which can come after a
  // scanner's first keystroke: that character would be lost. Focusing here, before the
  // document's load event, makes the field ready as soon as the page is.
  var autofocus = document.querySelector("[autofocus]");
  if (autofocus && document.activeElement !== autofocus) {
    autofocus.focus();
  }

  // A second click while the first submission is on its way would post twice on forms
  // without an idempotency key; on the award form the key makes it harmless anyway.
  document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitted) {
        event.preventDefault();
        return;
      }
      form.dataset.submitted = "1";
      // Disable after this tick, so the submission itself still goes out.
      setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) {
          b.disabled = true;
        });
      }, 0);
    });
  });

  // Print buttons: the page's own print stylesheet makes the paper copy.
  document.querySelectorAll("[data-print-page]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  });

  // The award form: a rule takes persons (if per person), no rule takes points.
  document.querySelectorAll("form[data-award-form]").forEach(function (form) {
    var select = form.querySelector("select[name=rule_code]");
    var persons = form.querySelector("#field-persons");
    var points = form.querySelector("#field-points");
    if (!select || !persons || !points) return;
    function show(field, visible) {
      field.hidden = !visible;
      field.querySelectorAll("input").forEach(function (input) {
        input.disabled = !visible;
      });
    }
    function update() {
      var option = select.options[select.selectedIndex];
      var per = option ? option.getAttribute("data-per") : null;
      show(persons, per === "person");
      show(points, !select.value);
    }
    select.addEventListener("change", update);
    update();
  });
})();
