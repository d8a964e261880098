// The page: draw on #pad (pointer events: mouse, pen, touch) or drop/choose an image; each finished
// stroke, after a short pause, sends the pad as a PNG to POST /predict?include=input, and the answer
// fills #digit, the 28x28 the model saw (#input) and the ten bars. When the service collects
// (GET /feedback), #correct offers "Right" and the ten digits: a click sends the same image to
// POST /feedback?label=D. Plain JS, nothing from elsewhere.
"use strict";

const PAUSE_MS = 250;  // after a stroke ends: long enough to start the next stroke of a 4 or a 7
const PREDICT_URL = "/predict?include=input";
const FEEDBACK_URL = "/feedback";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const input = document.getElementById("input");
const bars = document.getElementById("bars");
const answer = document.getElementById("answer");
const statusLine = document.getElementById("status");
const correct = document.getElementById("correct");
const thanks = document.getElementById("thanks");
let drawn = false, last = null, timer = null, asked = 0;
let collecting = false, answered = null;  // answered: the image and the digit of the answer shown

function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  drawn = false;
}

function point(event) {  // the pad is scaled by CSS: from page pixels to canvas pixels
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function strokeTo(to) {
  ink.strokeStyle = "#fff";
  ink.lineWidth = pad.width / 14;  // about MNIST's stroke relative to the digit
  ink.lineCap = ink.lineJoin = "round";
  ink.beginPath();
  ink.moveTo(...last);
  ink.lineTo(...to);
  ink.stroke();
  last = to;
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  clearTimeout(timer);
  last = point(event);
  strokeTo(last);  // a tap is a dot
  drawn = true;
});
pad.addEventListener("pointermove", (event) => {
  if (last) strokeTo(point(event));
});
for (const end of ["pointerup", "pointercancel"]) {
  pad.addEventListener(end, () => {
    if (!last) return;
    last = null;
    clearTimeout(timer);
    timer = setTimeout(sendPad, PAUSE_MS);
  });
}

document.getElementById("clear").addEventListener("click", () => {
  clearTimeout(timer);
  clearPad();
  asked++;  // an answer still on its way is for a drawing that is gone
  show(null);
  say("Draw a digit, or drop an image here.");
});

function sendPad() {
  if (!drawn) return;
  pad.toBlob((png) => send(png, { "Content-Type": "image/png" }, "your drawing", png), "image/png");
}

function sendFile(file) {
  if (!file) return;
  clearPad();
  const form = new FormData();
  form.append("image", file, file.name);
  send(form, {}, file.name, file);
}

async function send(body, headers, what, image) {
  const mine = ++asked;
  say("Asking the model\u2026");
  try {
    const response = await fetch(PREDICT_URL, { method: "POST", body, headers });
    // An overloaded server (or a proxy in front of it) may answer in plain text, not JSON.
    const json = (response.headers.get("content-type") || "").includes("application/json");
    const reply = json ? await response.json() : { error: (await response.text()).trim() };
    if (mine !== asked) return;  // a newer drawing or file was sent since
    if (response.status === 503) {
      show(null);
      say(busy(response.headers.get("retry-after")), true);
      return;
    }
    const record = Array.isArray(reply) ? reply[0] : null;
    if (!record || record.error) {
      show(null);
      say(record ? record.error : reply.error || `HTTP ${response.status}`, true);
      return;
    }
    show(record);
    say(`Read from ${what}.`);
    offerCorrection(image, record.digit);
  } catch (error) {
    if (mine === asked) say(`The server did not answer (${error.message}).`, true);
  }
}

function busy(retryAfter) {
  const seconds = Number.parseInt(retryAfter, 10);
  const when = Number.isFinite(seconds) && seconds > 0 ? ` in ${seconds} s` : "";
  return `The server is busy: try again${when}.`;
}

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

function offerCorrection(image, digit) {
  answered = { image, digit };
  thanks.textContent = "";
  thanks.classList.remove("error");
  correct.hidden = !collecting;
}

async function sendCorrection(label) {
  if (!answered) return;
  const form = new FormData();
  form.append("image", answered.image, answered.image.name || "drawing.png");
  const token = document.getElementById("token").value;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  try {
    const response = await fetch(`${FEEDBACK_URL}?label=${label}`, { method: "POST", body: form, headers });
    const reply = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    const kept = response.ok;
    thanks.textContent = kept ? `Thank you: kept as ${String(label) === "8" ? "an" : "a"} ${label}.` : reply.error || `HTTP ${response.status}`;
    thanks.classList.toggle("error", !kept);
    if (kept) answered = null;  // one correction per answer
  } catch (error) {
    thanks.textContent = `The server did not answer (${error.message}).`;
    thanks.classList.add("error");
  }
}

function show(record) {
  if (!record) correct.hidden = true;
  document.getElementById("digit").textContent = record ? record.digit : "\u2013";
  document.getElementById("confidence").textContent = record
    ? `${(100 * record.confidence).toFixed(1)} % sure` : "\u00a0";
  const seen = input.getContext("2d");
  const pixels = seen.createImageData(28, 28);
  record?.input.flat().forEach((value, i) => {
    pixels.data.fill(Math.round(255 * value), 4 * i, 4 * i + 3);
  });
  for (let i = 3; i < pixels.data.length; i += 4) pixels.data[i] = 255;
  seen.putImageData(pixels, 0, 0);
  bars.querySelectorAll("li").forEach((row, digit) => {
    const p = record ? record.probabilities[digit] : 0;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".value").textContent = record ? p.toFixed(3) : "";
    row.classList.toggle("top", record !== null && digit === record.digit);
    row.dataset.probability = p;
  });
  answer.dataset.answers = Number(answer.dataset.answers) + 1;  // tests wait on this
}

for (let digit = 0; digit < 10; digit++) {
  const row = document.createElement("li");
  row.dataset.digit = digit;
  row.innerHTML = `<span>${digit}</span><div class="track"><div class="fill"></div></div><span class="value"></span>`;
  bars.append(row);
}

const fileInput = document.getElementById("file");
fileInput.addEventListener("change", () => {
  sendFile(fileInput.files[0]);
  fileInput.value = "";  // choosing the same file again is a new choice
});
const dropZone = document.getElementById("drop");
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
document.addEventListener("dragleave", (event) => {
  if (event.relatedTarget === null) dropZone.classList.remove("dragging");
});
document.addEventListener("drop", (event) => {  // anywhere on the page: a missed drop must not open the file
  event.preventDefault();
  dropZone.classList.remove("dragging");
  sendFile(event.dataTransfer.files[0]);
});

const labels = document.getElementById("labels");
for (let digit = 0; digit < 10; digit++) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = digit;
  button.dataset.label = digit;
  button.addEventListener("click", () => sendCorrection(digit));
  labels.append(button);
}
document.getElementById("right").addEventListener("click", () => answered && sendCorrection(answered.digit));

fetch(FEEDBACK_URL).then((response) => response.json()).then((state) => {
  collecting = state.collecting === true;
  document.getElementById("token-label").hidden = !state.token_required;
}).catch(() => {});

clearPad();
show(null);
answer.dataset.answers = 0;
