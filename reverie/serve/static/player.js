// reverie player: one WebSocket, frames in (binary: 22-byte header + JPEG), input state out (JSON).
// The page sends what the player holds (keys, stick intents, on-screen buttons); the server maps it
// to the world's actions and tells the page, in the session message's `controls`, which keys,
// gamepad buttons and touch buttons this world has (reverie/serve/page_controls.py). No build step:
// plain ES2020.
"use strict";

const HEADER_BYTES = 22; // see reverie/serve/protocol.py HEADER
const VIEWS = ["dream", "real"];
const CODEC_MIME = ["image/jpeg", "image/webp"];
// Movement keys every world understands; a session adds its own (fire, numbered actions).
const MOVE_KEYS = ["keyw", "keya", "keys", "keyd", "keyq", "keye", "arrowup", "arrowdown", "arrowleft", "arrowright"];
let gameKeys = new Set(MOVE_KEYS);
let padKeys = {}; // standard-gamepad button index -> key code, for this world
const PAD_NAMES = { 0: "A", 1: "B", 2: "X", 3: "Y", 10: "L3", 11: "R3" };
const DEADZONE = 0.15;
const MAX_UPLOAD_SIDE = 256; // images are scaled down before upload; the world is small anyway

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), world: $("world"), backend: $("backend"), hud: $("hud"), hudReal: $("hud-real"),
  caption: $("caption"), notice: $("notice"), overlay: $("overlay"), overlayText: $("overlay-text"),
  overlayButton: $("overlay-button"), stage: $("stage"), paneReal: $("pane-real"),
  canvases: [$("view-dream"), $("view-real")], pause: $("pause"), realToggle: $("real-toggle"),
  record: $("record"), touch: $("touch"), touchToggle: $("touch-toggle"), knob: $("knob"), stick: $("stick"),
  help: $("help"), touchButtons: $("touch-buttons"),
};

// Test hook and live numbers (read by tests/test_browser.py).
const stats = window.__reverie = {
  status: "connecting", session: null, framesReceived: 0, framesDrawn: 0, inputsSent: 0,
  touchInputs: 0, gamepadInputs: 0, lastInput: null, lastHeader: null, fps: 0, latencyMs: null,
  errors: [], recordingType: null, inputs: [], // the last 32 inputs sent
  headers: [null, null], // the newest frame header per view (dream, real)
};

let ws = null;
let seq = 0;
let session = null;
let paused = false;
const sentAt = new Map(); // input seq -> performance.now() when sent
const latest = [-1, -1]; // newest frame index drawn per view
const frameTimes = []; // arrival times of dream frames in the last second

// ---- the player's input state ---------------------------------------------------------------
const held = new Set(); // KeyboardEvent.code, lower-case
const touchKeys = new Set();
const touchActions = new Set(); // action names held on on-screen buttons that no key reaches
const stick = { forward: 0, turn: 0 }; // touch joystick
const pad = { forward: 0, side: 0, turn: 0, keys: new Set(), start: false, select: false };
let lastSent = "";

function currentInput() {
  const keys = new Set([...held, ...touchKeys, ...pad.keys]);
  const clamp = (v) => Math.max(-1, Math.min(1, Math.round(v * 20) / 20)); // 0.05 steps: no jitter floods
  return {
    keys: [...keys].slice(0, 16),
    axes: { forward: clamp(stick.forward + pad.forward), side: clamp(pad.side), turn: clamp(stick.turn + pad.turn) },
    buttons: [...touchActions].slice(0, 16),
  };
}

function sendInput(source, measure = true) {
  const state = currentInput();
  const key = JSON.stringify(state);
  if (key === lastSent || !session) return;
  lastSent = key;
  send({ type: "input", seq: ++seq, ...state });
  if (measure) sentAt.set(seq, performance.now());
  stats.inputsSent++;
  stats.lastInput = { source, ...state, seq };
  stats.inputs.push(stats.lastInput);
  if (stats.inputs.length > 32) stats.inputs.shift();
  if (source === "touch") stats.touchInputs++;
  if (source === "gamepad") stats.gamepadInputs++;
}

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function sendControl(msg) { // reset / pause: sequenced, but a restart is not a key-to-frame latency
  msg.seq = ++seq;
  send(msg);
}

// ---- connection -------------------------------------------------------------------------------
function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${proto}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  setStatus("connecting", "");
  ws.onmessage = (ev) => (typeof ev.data === "string" ? onControl(JSON.parse(ev.data)) : onFrame(ev.data));
  ws.onclose = () => {
    session = null;
    if (stats.status === "ended") return; // the end message already said why
    showOverlay("Disconnected.", true);
    setStatus("disconnected", "");
  };
}

function onControl(m) {
  switch (m.type) {
    case "hello":
      ui.world.textContent = m.world;
      ui.backend.textContent = m.backend;
      send({ type: "hello", views: wantReal ? ["dream", "real"] : ["dream"] });
      break;
    case "queue":
      setStatus("wait", `queue #${m.position}`);
      showOverlay(`You are <b>#${m.position}</b> in line.<small>about ${fmtWait(m.expected_wait_s)}` +
                  `${m.wait_is_guess ? " (a guess: nobody has finished yet)" : ""} · ` +
                  `${m.max_sessions} playing at once</small>`, false);
      break;
    case "session":
      session = m;
      stats.session = m;
      lastSent = "";
      hideOverlay();
      ui.realToggle.classList.toggle("hidden", !m.available_views.includes("real"));
      setAspect(m.size[0], m.size[1]);
      if (m.controls) showControls(m.controls);
      bindPanel.show(m); // bind.js: keys for unnamed latent codes
      setStatus("live", "playing"); // last: "live" means the controls and panels are built
      sentAt.clear();
      sendInput("keyboard", false); // keys already held; the world's first frame is not a reaction
      break;
    case "bound":
      if (m.controls) showControls(m.controls); // the saved keys play now, no reload
      bindPanel.bound(m);
      break;
    case "previews":
      bindPanel.previews(m);
      break;
    case "caption":
      ui.caption.textContent = m.text;
      break;
    case "notice":
      notice(m.message);
      break;
    case "error":
      stats.errors.push(m);
      notice(m.message);
      break;
    case "end":
      stats.status = "ended";
      showOverlay(`Session ended.<small>${escapeHtml(m.message)}</small>`, true);
      setStatus("ended", "ended");
      break;
  }
}

function onFrame(buf) {
  const dv = new DataView(buf);
  if (dv.getUint8(0) !== 0x52 || dv.getUint8(1) !== 0x56) return; // "RV"
  const h = {
    view: dv.getUint8(3), codec: dv.getUint8(4), index: dv.getUint32(6, true), seq: dv.getUint32(10, true),
    genUs: dv.getUint32(14, true), width: dv.getUint16(18, true), height: dv.getUint16(20, true),
  };
  stats.framesReceived++;
  stats.lastHeader = h;
  if (h.view < stats.headers.length) stats.headers[h.view] = h;
  const now = performance.now();
  if (h.view === 0) {
    frameTimes.push(now);
    for (const [s, t] of sentAt) { // first frame that consumed input s: key-to-frame latency
      if (s > h.seq) continue;
      const ms = now - t;
      stats.latencyMs = stats.latencyMs === null ? ms : 0.8 * stats.latencyMs + 0.2 * ms;
      sentAt.delete(s);
    }
  }
  const blob = new Blob([new Uint8Array(buf, HEADER_BYTES)], { type: CODEC_MIME[h.codec] || "image/jpeg" });
  createImageBitmap(blob).then((bmp) => {
    if (h.index < latest[h.view]) return bmp.close(); // decoded out of order: a newer frame is up
    latest[h.view] = h.index;
    draw(ui.canvases[h.view], bmp);
    bmp.close();
    stats.framesDrawn++;
  }).catch(() => {});
}

function draw(canvas, bmp) {
  // Drawn at an integer upscale so recordings stay sharp; CSS scales further with crisp pixels.
  const scale = Math.max(1, Math.floor(512 / Math.max(bmp.width, bmp.height)));
  const w = bmp.width * scale, h = bmp.height * scale;
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(bmp, 0, 0, w, h);
}

// ---- HUD ----------------------------------------------------------------------------------------
function renderHud() {
  const now = performance.now();
  while (frameTimes.length && frameTimes[0] < now - 1000) frameTimes.shift();
  stats.fps = frameTimes.length;
  const lat = stats.latencyMs === null ? "–" : Math.round(stats.latencyMs);
  // Each pane shows its own generation time: the simulator is not the model.
  const [dream, real] = stats.headers;
  const gen = (h) => (h ? (h.genUs / 1000).toFixed(1) : "–");
  ui.hud.textContent = `${stats.fps} fps · ${lat} ms · gen ${gen(dream)} ms · #${dream ? dream.index : 0}`;
  ui.hudReal.textContent = wantReal && real ? `gen ${gen(real)} ms · #${real.index}` : "";
}
function hudLoop() {
  renderHud();
  pollGamepad();
  requestAnimationFrame(hudLoop);
}

// ---- keyboard -----------------------------------------------------------------------------------
function typing(ev) { return ev.target instanceof HTMLInputElement && ev.target.type === "text"; }
addEventListener("keydown", (ev) => {
  if (typing(ev) || ev.metaKey || ev.ctrlKey) return;
  const code = ev.code.toLowerCase();
  if (gameKeys.has(code)) {
    ev.preventDefault();
    if (!held.has(code)) { held.add(code); sendInput("keyboard"); }
  } else if (!ev.repeat && code === "keyp") togglePause();
  else if (!ev.repeat && code === "keyr") restart();
  else if (!ev.repeat && code === "keyn") newWorld();
});
addEventListener("keyup", (ev) => {
  const code = ev.code.toLowerCase();
  if (held.delete(code)) sendInput("keyboard");
});
addEventListener("blur", () => { held.clear(); sendInput("keyboard"); });

// ---- gamepad (polled every animation frame) -------------------------------------------------
function pollGamepad() {
  const pads = navigator.getGamepads ? navigator.getGamepads() : [];
  const gp = [...(pads || [])].find((p) => p && p.connected !== false);
  if (!gp) return;
  const ax = (i) => { const v = gp.axes[i] || 0; return Math.abs(v) < DEADZONE ? 0 : v; };
  const btn = (i) => !!(gp.buttons[i] && (gp.buttons[i].pressed || gp.buttons[i].value > 0.5));
  pad.forward = -ax(1);
  pad.side = ax(0);
  pad.turn = ax(2);
  pad.keys = new Set();
  if (btn(12)) pad.keys.add("arrowup");
  if (btn(13)) pad.keys.add("arrowdown");
  if (btn(14)) pad.keys.add("arrowleft");
  if (btn(15)) pad.keys.add("arrowright");
  if (btn(4)) pad.keys.add("keyq");
  if (btn(5)) pad.keys.add("keye");
  if (btn(7) || (btn(0) && !padKeys["0"])) pad.keys.add("keyw"); // right trigger (A when free): go
  if (btn(6)) pad.keys.add("keys");
  for (const [i, key] of Object.entries(padKeys)) if (btn(Number(i))) pad.keys.add(key); // this world's acts
  if (btn(9) && !pad.start) togglePause();
  if (btn(8) && !pad.select) restart();
  pad.start = btn(9);
  pad.select = btn(8);
  sendInput("gamepad");
}

// This world's controls: the keys the page captures, the help line, the touch row, the gamepad.
function showControls(c) {
  gameKeys = new Set([...MOVE_KEYS, ...c.keys]);
  padKeys = c.pad || {};
  touchKeys.clear();
  touchActions.clear();
  ui.touchButtons.replaceChildren(...c.touch.map(touchButton));
  const parts = c.bindings.filter((b) => b.label).map((b) => `<kbd>${escapeHtml(b.label)}</kbd> ${escapeHtml(b.name)}`);
  const touchOnly = c.bindings.filter((b) => !b.label && b.keys.length === 0).length > 1;
  const named = Object.entries(padKeys).map(([i, key]) => {
    const t = c.touch.find((e) => e.key === key);
    return `${PAD_NAMES[i] || i} ${escapeHtml(t ? t.label : key)}`;
  });
  const pads = " · gamepad: stick, d-pad" + (named.length ? ", " + named.join(", ") : "");
  ui.help.innerHTML = parts.join(" · ") + " · <kbd>P</kbd> pause · <kbd>R</kbd> restart · <kbd>N</kbd> new world" +
    pads + (touchOnly ? " · more actions on the touch row" : "");
  stats.controls = c;
}
// ---- session controls ---------------------------------------------------------------------------
function togglePause() {
  paused = !paused;
  ui.pause.classList.toggle("on", paused);
  ui.pause.textContent = paused ? "resume" : "pause";
  sendControl({ type: "pause", paused });
}
function restart(extra = {}) {
  if (paused) togglePause();
  sendControl({ type: "reset", ...extra });
}
function newWorld() { restart({ seed: Math.floor(Math.random() * 2 ** 31) }); }
ui.pause.onclick = togglePause;
$("restart").onclick = () => restart();
$("new-world").onclick = newWorld;

let wantReal = false;
ui.realToggle.onclick = () => {
  wantReal = !wantReal;
  ui.realToggle.classList.toggle("on", wantReal);
  ui.paneReal.classList.toggle("hidden", !wantReal);
  ui.stage.classList.toggle("two", wantReal);
  latest[1] = -1;
  send({ type: "views", views: wantReal ? ["dream", "real"] : ["dream"] });
};

$("prompt-form").onsubmit = (ev) => {
  ev.preventDefault();
  const prompt = $("prompt").value.trim();
  if (prompt) restart({ prompt, seed: Math.floor(Math.random() * 2 ** 31) });
  $("prompt").blur();
};

$("image").onchange = async (ev) => {
  const file = ev.target.files[0];
  ev.target.value = "";
  if (!file) return;
  if (!/^image\/(png|jpeg|webp|gif)$/.test(file.type)) return notice("images: PNG, JPEG, WebP or GIF");
  if (file.size > 20 * 1024 * 1024) return notice("that image is larger than 20 MB");
  try { // scaled down here: the upload stays far below the server's limit
    const bmp = await createImageBitmap(file);
    const s = Math.min(1, MAX_UPLOAD_SIDE / Math.max(bmp.width, bmp.height));
    const c = document.createElement("canvas");
    c.width = Math.max(1, Math.round(bmp.width * s));
    c.height = Math.max(1, Math.round(bmp.height * s));
    c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
    const image = c.toDataURL("image/png");
    restart({ image, image_type: "image/png", prompt: $("prompt").value.trim() || undefined });
  } catch (e) {
    notice("could not read that image");
  }
};

// ---- small helpers ------------------------------------------------------------------------------
function setStatus(state, text) {
  stats.status = state;
  ui.status.className = "status " + state;
  ui.status.textContent = text || state;
}
function setAspect(w, h) {
  for (const c of ui.canvases) { c.style.setProperty("--aspect", `${w} / ${h}`); }
}
let noticeTimer = 0;
function notice(text) {
  ui.notice.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { ui.notice.textContent = ""; }, 6000);
}
function showOverlay(html, again) {
  ui.overlayText.innerHTML = html;
  ui.overlayButton.classList.toggle("hidden", !again);
  ui.overlay.classList.remove("hidden");
}
function hideOverlay() { ui.overlay.classList.add("hidden"); }
ui.overlayButton.onclick = () => { stats.status = "connecting"; hideOverlay(); connect(); };
function fmtWait(s) { return s < 60 ? `${Math.max(1, Math.round(s))} s` : `${Math.round(s / 60)} min`; }
function escapeHtml(t) { const d = document.createElement("div"); d.textContent = t; return d.innerHTML; }

// Connect once every script has run: a session granted while touch.js or bind.js still loads (a
// busy server) would otherwise build its controls from functions that do not exist yet.
document.addEventListener("DOMContentLoaded", connect);
requestAnimationFrame(hudLoop);
