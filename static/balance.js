// The villagers' balance page: a keyboard-wedge scanner types a card into the focused
// field and presses Enter; the page shows the household's points, then forgets them.
(function () {
  "use strict";

  var root = document.querySelector("[data-balance-page]");
  if (!root) {
    return;
  }
  var form = root.querySelector("form");
  var field = form.elements.payload;
  var token = form.elements.csrf_token.value;
  var result = document.getElementById("balance-result");
  var idle = document.getElementById("balance-idle").innerHTML;
  var clearAfter = Math.max(Number(root.dataset.clearAfter) || 30, 0.2) * 1000;
  var timer = null;
  // Only the latest scan may paint the screen, even if an earlier answer arrives later.
  var latest = 0;
  var stale = false;

  function focusField() {
    if (document.activeElement !== field) {
      field.focus();
    }
  }

  function show(html) {
    result.innerHTML = html;
  }

  function showText(text) {
    var p = document.createElement("p");
    p.className = "balance-message";
    p.setAttribute("data-refused", "");
    p.textContent = text;
    result.textContent = "";
    result.appendChild(p);
  }

  function clearSoon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      if (stale) {
        // The form's token expired: a fresh page brings a new one.
        window.location.reload();
        return;
      }
      show(idle);
      field.value = "";
      focusField();
    }, clearAfter);
  }

  function lookUp(payload) {
    var mine = ++latest;
    showText(root.dataset.msgBusy);
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": token,
      },
      body: JSON.stringify({ payload: payload }),
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            return { status: response.status, body: body };
          });
      })
      .then(function (answer) {
        if (mine !== latest) {
          return;
        }
        if (answer.status === 200 && typeof answer.body.html === "string") {
          show(answer.body.html);
        } else if (answer.status === 429) {
          showText(answer.body.message || root.dataset.msgTooMany);
        } else {
          stale = answer.status === 400;
          showText(root.dataset.msgFailed);
        }
        clearSoon();
      })
      .catch(function () {
        if (mine === latest) {
          showText(root.dataset.msgFailed);
          clearSoon();
        }
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    // Read as API.md says (NFKC, trimmed, any case): the server does the same.
    var payload = window.IPOS ? window.IPOS.normalize(field.value).toUpperCase() : field.value.trim();
    // Emptied at once, so the next card scanned never lands behind this one.
    field.value = "";
    if (payload) {
      lookUp(payload);
    }
  });

  // There is no mouse at a scanner: whatever takes the focus, give it back to the field.
  field.addEventListener("blur", function () {
    window.setTimeout(focusField, 0);
  });
  document.addEventListener("click", focusField);
  document.addEventListener("visibilitychange", focusField);
  focusField();
})();
