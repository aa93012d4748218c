// The "bind keys" panel, for a model whose actions are unnamed latent codes (c1, c2, ...): a select
// per code chooses what it plays, and "save" sends a `bind` message. The server writes keys.json
// only when started with `reverie play --allow-bind`; otherwise the panel names the CLI instead.
// "preview" asks for a short dream per code from the current frames (a `preview` message); each
// arrives as one JPEG strip of frames side by side and loops beside its code.
"use strict";

const BIND_ACTIONS = ["forward", "back", "turn_left", "turn_right", "strafe_left", "strafe_right",
  "forward_left", "forward_right", "back_left", "back_right", "fire", "jump", "use"];

const bindPanel = {
  el: document.getElementById("bind"),

  show(m) {
    const names = (m.actions && (m.actions.codes || m.actions.names)) || [];
    const codes = names.filter((n) => /^c\d+$/.test(n));
    this.el.classList.toggle("hidden", codes.length === 0);
    if (!codes.length) return;
    const bound = (m.actions.codes ? m.actions.names : names);
    const rows = codes.map((code) => {
      const now = bound[names.indexOf(code)];
      const opts = ["", ...BIND_ACTIONS].map((a) =>
        `<option value="${a}"${a === now ? " selected" : ""}>${a || "(number key)"}</option>`).join("");
      return `<label><span class="bind-preview" data-code="${code}"></span>${code} ` +
        `<select data-code="${code}">${opts}</select></label>`;
    }).join("");
    const how = m.allow_bind ? "" :
      `<p class="bind-how">This server does not save bindings. Bind from the command line:<br>` +
      `<code>reverie bind-keys --model RUN c1=forward c2=turn_left …</code><br>` +
      `or restart with <code>reverie play --model RUN --allow-bind</code>.</p>`;
    this.el.innerHTML = `<summary>bind keys</summary><p>This model's actions are unnamed codes: ` +
      `"preview" shows a short dream of each code from where you stand (or hold its number key), then choose what it plays.</p>` +
      `<div class="bind-rows">${rows}</div><button id="bind-preview">preview</button> ` +
      `<button id="bind-save"${m.allow_bind ? "" : " disabled"}>save</button>` +
      `<span id="bind-state"></span>${how}`;
    document.getElementById("bind-save").onclick = () => this.save();
    document.getElementById("bind-preview").onclick = () => send({ type: "preview" });
  },

  // Each code's strip loops at a few frames a second (CSS background offsets, no decoding per frame).
  previews(m) {
    clearInterval(this.timer);
    const spans = [...this.el.querySelectorAll(".bind-preview")].filter((s) => m.strips[s.dataset.code]);
    for (const s of spans) {
      s.style.backgroundImage = `url(${m.strips[s.dataset.code]})`;
      s.style.backgroundSize = `${m.frames * 100}% 100%`;
    }
    let i = 0;
    this.timer = setInterval(() => {
      i = (i + 1) % m.frames;
      for (const s of spans) s.style.backgroundPosition = `${(i * 100) / Math.max(1, m.frames - 1)}% 0`;
    }, 1000 / 6);
    window.__reverie.previews = spans.length; // test hook
  },

  save() {
    const binding = {};
    for (const s of this.el.querySelectorAll("select")) if (s.value) binding[s.dataset.code] = s.value;
    send({ type: "bind", binding });
  },

  bound(m) {
    document.getElementById("bind-state").textContent =
      `saved to ${m.path}; the keys above play it now`;
  },
};
