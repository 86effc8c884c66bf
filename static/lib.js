// The one small library every page script uses: fill, keys, fetch, scanned text read as
// API.md says, one ordered queue of scans per field, and the counter's sounds.
(function () {
  "use strict";

  // Included once per page, but harmless twice (a page and a panel it includes).
  if (window.IPOS) return;
  var IPOS = (window.IPOS = {});

  IPOS.fill = function (text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (whole, key) {
      return key in values ? values[key] : whole;
    });
  };

  IPOS.newKey = function () {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) { return (b + 256).toString(16).slice(1); })
      .join("");
  };

  // API.md, "Scanned and typed text": NFKC (a Chinese input method types full-width
  // ＩＣ１．６９０), then trimmed. The server does the same; doing it here too keeps the
  // look-up URL and the "is this a card?" test right before anything is sent.
  IPOS.normalize = function (text) {
    text = String(text == null ? "" : text);
    if (text.normalize) text = text.normalize("NFKC");
    return text.replace(/^[\s\u0000-\u001f\u007f]+|[\s\u0000-\u001f\u007f]+$/g, "");
  };

  // Card payloads are case-insensitive: a scanner with Caps Lock on types "ic1.".
  IPOS.isCard = function (code) {
    return /^IC1\./i.test(code);
  };

  IPOS.getJson = function (url, options) {
    return fetch(url, options).then(function (response) {
      return response
        .json()
        .catch(function () { return {}; })
        .then(function (data) { return { status: response.status, data: data }; });
    });
  };

  // JSON to and from our API with the page's CSRF token; never rejects on an HTTP status.
  IPOS.call = function (url, method, csrf, body, signal) {
    return IPOS.getJson(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal,
    });
  };

  // One queue per scan field. A keyboard-wedge scanner types a code and Enter in a few
  // milliseconds, many codes back to back; each Enter takes the field's text at once (so the
  // next code's keystrokes land in an empty field) and its handling waits for the one
  // before, so no scan is dropped or reordered however slow a look-up is.
  // `onEnter(code)` returns the job to queue (a function that may return a promise), or
  // nothing when it handled the key on the spot. `holder.dataset.queued` counts the jobs
  // not yet finished, for people (a busy cursor) and for tests.
  IPOS.scanQueue = function (input, onEnter, holder) {
    holder = holder || input;
    var tail = Promise.resolve();
    var waiting = 0;

    function mark() {
      holder.dataset.queued = String(waiting);
    }

    function enqueue(job) {
      waiting += 1;
      mark();
      tail = tail
        .then(job)
        .catch(function (error) {
          if (window.console) console.error(error);
        })
        .then(function () {
          waiting -= 1;
          mark();
        });
      return tail;
    }

    input.addEventListener("keydown", function (event) {
      // Enter that ends an input method's composition is not a scan.
      if (event.key !== "Enter" || event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      var code = IPOS.normalize(input.value);
      input.value = "";
      var job = onEnter(code, event);
      if (job) enqueue(job);
    });
    mark();
    return { enqueue: enqueue, busy: function () { return waiting > 0; } };
  };

  // Sounds from Web Audio (no files): a clerk looks at the goods, not at red text.
  // beep: a good scan; refuse: a low double tone for any refusal; warn: out of stock;
  // chime: a sale done. On by default; the choice is kept per browser.
  var SOUND_KEY = "ipos.sound";
  var PATTERNS = {
    beep: [[1400, 0, 0.06, "square", 0.05]],
    refuse: [[220, 0, 0.16, "square", 0.09], [165, 0.22, 0.22, "square", 0.09]],
    warn: [[520, 0, 0.12, "triangle", 0.2], [780, 0.14, 0.12, "triangle", 0.2],
      [520, 0.28, 0.12, "triangle", 0.2], [780, 0.42, 0.12, "triangle", 0.2]],
    chime: [[784, 0, 0.14, "sine", 0.2], [1047, 0.13, 0.14, "sine", 0.2],
      [1319, 0.26, 0.3, "sine", 0.2]],
  };
  var audio = null;

  function soundOn() {
    try {
      return window.localStorage.getItem(SOUND_KEY) !== "off";
    } catch (error) {
      return true;
    }
  }

  IPOS.sound = {
    enabled: soundOn,
    setEnabled: function (on) {
      try {
        window.localStorage.setItem(SOUND_KEY, on ? "on" : "off");
      } catch (error) {
        // A browser that keeps nothing still plays or stays quiet for this page.
      }
    },
    play: function (name) {
      var body = document.body;
      // What was played is written on the page, so a test can hear it.
      body.dataset.lastSound = name;
      body.dataset.soundCount = String((parseInt(body.dataset.soundCount, 10) || 0) + 1);
      if (!soundOn() || !PATTERNS[name]) return;
      try {
        var Context = window.AudioContext || window.webkitAudioContext;
        if (!Context) return;
        audio = audio || new Context();
        if (audio.state === "suspended") audio.resume();
        var now = audio.currentTime;
        PATTERNS[name].forEach(function (note) {
          var osc = audio.createOscillator();
          var gain = audio.createGain();
          osc.type = note[3];
          osc.frequency.value = note[0];
          gain.gain.setValueAtTime(note[4], now + note[1]);
          gain.gain.exponentialRampToValueAtTime(0.0001, now + note[1] + note[2]);
          osc.connect(gain);
          gain.connect(audio.destination);
          osc.start(now + note[1]);
          osc.stop(now + note[1] + note[2] + 0.02);
        });
      } catch (error) {
        // No sound card is no reason to stop selling.
      }
    },
  };

  // A toggle button for the sound: aria-pressed says its state.
  document.querySelectorAll("[data-sound-toggle]").forEach(function (button) {
    function show() {
      var on = soundOn();
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? button.dataset.labelOn : button.dataset.labelOff;
    }
    button.addEventListener("click", function () {
      IPOS.sound.setEnabled(!soundOn());
      show();
    });
    show();
  });
})();
