// Keeps a rater's answers in localStorage (keyed by packet id and rater) and saves them as a
// JSON ratings file that `review import` reads. Reads everything it needs from the page's
// data-* attributes; writes nothing but textContent and classes into the page.
(function () {
  "use strict";
  var body = document.body;
  var packet = body.dataset.packet;
  var rater = body.dataset.rater;
  var storeKey = "ro-qlora-review/" + packet + "/" + rater;
  var form = document.getElementById("ratings");
  var progress = document.getElementById("progress");
  var status = document.getElementById("status");
  var questions = Array.prototype.slice.call(form.querySelectorAll("[data-question]"));

  function valueOf(q) {
    var t = q.querySelector("textarea");
    if (t) { return t.value; }
    var c = q.querySelector("input:checked");
    return c ? c.value : "";
  }

  function snapshot() {
    var s = {};
    form.querySelectorAll("input[type=radio]:checked").forEach(function (i) { s[i.name] = i.value; });
    form.querySelectorAll("textarea").forEach(function (t) { if (t.value !== "") { s[t.name] = t.value; } });
    return s;
  }

  function restore() {
    var s;
    try { s = JSON.parse(window.localStorage.getItem(storeKey) || "{}"); } catch (e) { s = {}; }
    form.querySelectorAll("input[type=radio]").forEach(function (i) {
      if (Object.prototype.hasOwnProperty.call(s, i.name)) { i.checked = s[i.name] === i.value; }
    });
    form.querySelectorAll("textarea").forEach(function (t) {
      if (typeof s[t.name] === "string") { t.value = s[t.name]; }
    });
  }

  function missing() {
    return questions.filter(function (q) { return q.dataset.required === "true" && valueOf(q) === ""; });
  }

  function update() {
    var required = questions.filter(function (q) { return q.dataset.required === "true"; }).length;
    var open = missing();
    progress.textContent = (required - open.length) + " of " + required + " required answers";
    questions.forEach(function (q) { if (valueOf(q) !== "") { q.classList.remove("missing"); } });
  }

  function persist() {
    try {
      window.localStorage.setItem(storeKey, JSON.stringify(snapshot()));
    } catch (e) {
      status.textContent = "This browser does not keep the answers (" + e.name + "): save the ratings before closing the page.";
      status.className = "warn";
    }
    update();
  }

  function describe(q) {
    return q.closest("[data-case-number]").dataset.caseNumber + q.closest("[data-candidate]").dataset.candidate +
      " " + q.dataset.question;
  }

  function save() {
    var answers = [];
    questions.forEach(function (q) {
      var v = valueOf(q);
      if (v === "") { return; }
      answers.push({
        "case": q.closest("[data-case]").dataset.case,
        "candidate": q.closest("[data-candidate]").dataset.candidate,
        "question": q.dataset.question,
        "value": q.dataset.kind === "scale" ? Number(v) : v
      });
    });
    var file = {
      "format": "ro-qlora-review-ratings",
      "version": 1,
      "packet": packet,
      "rater": rater,
      "saved_at": new Date().toISOString(),
      "answers": answers
    };
    var blob = new Blob([JSON.stringify(file, null, 1) + "\n"], { type: "application/json" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "ratings-" + rater + "-" + packet + ".json";
    document.body.appendChild(a);
    a.click();
    a.remove();
    window.setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
    var open = missing();
    open.forEach(function (q) { q.classList.add("missing"); });
    if (open.length === 0) {
      status.textContent = "Saved " + a.download + " with all required answers. Please send this file back.";
      status.className = "";
    } else {
      status.textContent = "Saved " + a.download + ", but " + open.length + " required answers are still open (case and candidate: " +
        open.slice(0, 8).map(describe).join(", ") + (open.length > 8 ? ", ..." : "") +
        "; marked in red). Save again when they are done.";
      status.className = "warn";
    }
  }

  restore();
  update();
  form.addEventListener("change", persist);
  form.addEventListener("input", persist);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  document.getElementById("save").addEventListener("click", save);
}());
