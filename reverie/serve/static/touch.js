// The on-screen controls for phones and tablets: a joystick (forward/back and turn, combined with
// held keys like the keyboard) and one button per entry of the world's touch row. Shares
// player.js's globals (ui, stick, touchKeys, touchActions, sendInput).
"use strict";

let stickPointer = null;
function stickMove(ev) {
  const r = ui.stick.getBoundingClientRect();
  const radius = r.width / 2;
  let dx = ev.clientX - (r.left + radius), dy = ev.clientY - (r.top + radius);
  const len = Math.hypot(dx, dy);
  if (len > radius) { dx *= radius / len; dy *= radius / len; }
  ui.knob.style.transform = `translate(${dx}px, ${dy}px)`;
  stick.forward = -dy / radius;
  stick.turn = dx / radius;
  sendInput("touch");
}
ui.stick.addEventListener("pointerdown", (ev) => {
  stickPointer = ev.pointerId;
  ui.stick.setPointerCapture(ev.pointerId);
  stickMove(ev);
});
ui.stick.addEventListener("pointermove", (ev) => { if (ev.pointerId === stickPointer) stickMove(ev); });
const stickEnd = (ev) => {
  if (ev.pointerId !== stickPointer) return;
  stickPointer = null;
  ui.knob.style.transform = "";
  stick.forward = stick.turn = 0;
  sendInput("touch");
};
ui.stick.addEventListener("pointerup", stickEnd);
ui.stick.addEventListener("pointercancel", stickEnd);
// One on-screen button per entry of the world's touch row: it holds a key (combined with the
// stick, like the keyboard) or, for actions no key reaches, the action itself.
function touchButton(entry) {
  const b = document.createElement("button");
  b.className = "tb" + (entry.label.length > 2 ? " word" : "");
  b.textContent = entry.label;
  b.dataset.key = entry.key || "";
  b.dataset.action = entry.action || "";
  const held = entry.key ? touchKeys : touchActions;
  const value = entry.key || entry.action;
  b.addEventListener("pointerdown", (ev) => { ev.preventDefault(); held.add(value); b.classList.add("on"); sendInput("touch"); });
  const up = () => { if (held.delete(value)) { b.classList.remove("on"); sendInput("touch"); } };
  b.addEventListener("pointerup", up);
  b.addEventListener("pointercancel", up);
  b.addEventListener("pointerleave", up);
  return b;
}

function showTouch(on) {
  ui.touch.classList.toggle("hidden", !on);
  document.body.classList.toggle("touching", on);
  ui.touchToggle.classList.toggle("on", on);
}
ui.touchToggle.onclick = () => showTouch(ui.touch.classList.contains("hidden"));
showTouch(matchMedia("(pointer: coarse)").matches || navigator.maxTouchPoints > 0);
