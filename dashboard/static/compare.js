// The compare page: the source follows the edit (play, pause, seek), offset for a backward extension;
// the outline of the region the edit kept is toggled on top of the edit.
(function () {
  const edit = document.getElementById("edit-player");
  const source = document.getElementById("source-player");
  const offset = parseFloat(document.currentScript.dataset.offset || "0");
  const state = document.getElementById("sync-state");
  function follow() {
    const t = edit.currentTime - offset;
    if (t < 0 || t > (source.duration || Infinity)) { source.pause(); return; }
    if (Math.abs(source.currentTime - t) > 0.05) source.currentTime = t;
    if (edit.paused !== source.paused) { edit.paused ? source.pause() : source.play().catch(() => {}); }
    state.textContent = (state.dataset.inStep || "in step at") + " " + edit.currentTime.toFixed(2) + " s";
    state.dataset.delta = Math.abs(source.currentTime - t).toFixed(3);
  }
  ["play", "pause", "seeked", "timeupdate"].forEach((e) => edit.addEventListener(e, follow));
  document.getElementById("play-both").addEventListener("click", () => { edit.play().catch(() => {}); });
  document.getElementById("pause-both").addEventListener("click", () => { edit.pause(); follow(); });
  const toggle = document.getElementById("toggle-outline");
  const outline = document.getElementById("mask-outline");
  if (toggle && outline) toggle.addEventListener("change", () => { outline.hidden = !toggle.checked; });
})();
