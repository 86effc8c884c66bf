// Declarations: the phone page (card scan by camera, photo previews, persons for per-person
// deeds) and the review page (Enter approves). Every page also works without script; the
// words shown come from the page (data-msg-*), never from here.
(function () {
  "use strict";

  // --- the household: scan its member card with the phone's camera ----------------------
  // BarcodeDetector is in Chrome on Android, not everywhere: without it (or a camera) the
  // button stays hidden and the name search is the way.
  var scan = document.getElementById("card-scan");
  var cardForm = document.getElementById("card-form");
  if (
    scan && cardForm && "BarcodeDetector" in window &&
    navigator.mediaDevices && navigator.mediaDevices.getUserMedia
  ) {
    var video = document.getElementById("scan-video");
    var status = document.getElementById("scan-status");
    var start = document.getElementById("scan-start");
    var payload = cardForm.querySelector("input[name=payload]");
    var stream = null;

    var stop = function () {
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null;
      video.hidden = true;
    };
    var say = function (name) {
      status.textContent = scan.getAttribute("data-msg-" + name) || "";
    };

    Promise.resolve(
      window.BarcodeDetector.getSupportedFormats
        ? window.BarcodeDetector.getSupportedFormats()
        : ["qr_code"]
    ).then(function (formats) {
      if (formats.indexOf("qr_code") < 0) return;
      scan.hidden = false;
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      start.addEventListener("click", function () {
        say("starting");
        navigator.mediaDevices
          .getUserMedia({ video: { facingMode: "environment" }, audio: false })
          .then(function (s) {
            stream = s;
            video.srcObject = s;
            video.hidden = false;
            return video.play();
          })
          .then(function () {
            say("aim");
            var look = function () {
              if (!stream) return;
              detector.detect(video).then(function (codes) {
                var text = codes.length ? IPOS.normalize(codes[0].rawValue) : "";
                if (text && IPOS.isCard(text)) {
                  say("found");
                  stop();
                  payload.value = text;
                  cardForm.submit();
                } else {
                  window.setTimeout(look, 200);
                }
              }).catch(function () { window.setTimeout(look, 400); });
            };
            look();
          })
          .catch(function () {
            stop();
            say("denied");
          });
      });
      window.addEventListener("pagehide", stop);
    }).catch(function () { /* no detector: the name search stays */ });
  }

  // --- the declaration form ---------------------------------------------------------------
  var form = document.getElementById("declare-form");
  if (form) {
    var rule = form.querySelector("select[name=rule_code]");
    var persons = document.getElementById("field-persons");
    var showPersons = function () {
      var option = rule.options[rule.selectedIndex];
      var perPerson = option && option.getAttribute("data-per") === "person";
      persons.hidden = !perPerson;
      persons.querySelectorAll("input").forEach(function (input) { input.disabled = !perPerson; });
    };
    if (rule && persons) {
      rule.addEventListener("change", showPersons);
      showPersons();
    }

    // One more photo input appears once the one before holds a photo; each shows a preview.
    var inputs = Array.prototype.slice.call(form.querySelectorAll("input[type=file][name=photo]"));
    var previews = document.getElementById("photo-previews");
    var urls = [];
    var refresh = function () {
      urls.forEach(function (u) { URL.revokeObjectURL(u); });
      urls = [];
      previews.textContent = "";
      inputs.forEach(function (input, i) {
        if (i > 0) input.hidden = !(inputs[i - 1].files && inputs[i - 1].files.length) && !input.files.length;
        if (input.files && input.files[0]) {
          var url = URL.createObjectURL(input.files[0]);
          urls.push(url);
          var img = document.createElement("img");
          img.src = url;
          img.alt = input.getAttribute("aria-label") || "";
          previews.appendChild(img);
        }
      });
    };
    inputs.forEach(function (input) { input.addEventListener("change", refresh); });
    if (previews && inputs.length) refresh();
  }

  // --- reviewing: Enter approves ----------------------------------------------------------
  // The Approve button has the focus when the page opens, so Enter presses it; Enter
  // anywhere else that is not a field (after a click on the photo, say) approves too.
  var approve = document.getElementById("approve-form");
  if (approve && document.getElementById("review")) {
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || event.isComposing || event.defaultPrevented) return;
      var target = event.target;
      var tag = target && target.tagName;
      if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || tag === "BUTTON" || tag === "A") return;
      event.preventDefault();
      var button = approve.querySelector("button[type=submit]");
      if (button && !button.disabled) button.click();
    });
  }
})();
