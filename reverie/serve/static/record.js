// Recording: MediaRecorder on the dream canvas; MP4 where the browser records it, else WebM.
// Shares player.js's globals (ui, session, stats, notice, $).
"use strict";

let recorder = null;
function recordingType() {
  const types = ["video/mp4;codecs=avc1", "video/mp4", "video/webm;codecs=vp9", "video/webm"];
  return types.find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t)) || null;
}
ui.record.onclick = () => {
  if (recorder) { recorder.stop(); return; }
  const type = recordingType();
  if (!type) return notice("this browser cannot record video");
  const chunks = [];
  const fps = session ? session.fps : 30;
  recorder = new MediaRecorder(ui.canvases[0].captureStream(fps), { mimeType: type, videoBitsPerSecond: 4e6 });
  stats.recordingType = type;
  recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
  recorder.onstop = () => {
    const blob = new Blob(chunks, { type });
    const a = $("download");
    a.href = URL.createObjectURL(blob);
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    a.download = `reverie-${stamp}.${type.startsWith("video/mp4") ? "mp4" : "webm"}`;
    a.click();
    recorder = null;
    ui.record.classList.remove("on");
    ui.record.textContent = "● rec";
  };
  recorder.start(1000);
  ui.record.classList.add("on");
  ui.record.textContent = "■ stop";
};
