/** The playground's stylesheet: system fonts, light and dark from the OS, one column on a phone. */
export const PLAYGROUND_CSS = `
:root {
  color-scheme: light dark;
  --bg: #f6f7f9;
  --card: #ffffff;
  --text: #16181d;
  --muted: #555c68;
  --border: #c9ced6;
  --accent: #1f5fd1;
  --accent-text: #ffffff;
  --error: #b3261e;
  --error-bg: #fdecea;
  --ok: #1e7a3c;
  --focus: #f0a000;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  line-height: 1.45;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111318;
    --card: #1b1e25;
    --text: #e8eaef;
    --muted: #a4abb8;
    --border: #3a404c;
    --accent: #7aa7ff;
    --accent-text: #0b1220;
    --error: #ff8a80;
    --error-bg: #3a1d1b;
    --ok: #6fd38f;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
.skip { position: absolute; left: -999px; top: 0; background: var(--card); padding: .5rem 1rem; }
.skip:focus { left: .5rem; z-index: 10; }
.top { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: baseline; justify-content: space-between;
  padding: .75rem 1rem; border-bottom: 1px solid var(--border); background: var(--card); }
.top h1 { font-size: 1.25rem; margin: 0; }
a { color: var(--accent); }
main { max-width: 78rem; margin: 0 auto; padding: 1rem; }
.columns { display: grid; gap: 1rem; grid-template-columns: minmax(0, 1fr); }
@media (min-width: 60rem) { .columns { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); align-items: start; } }
.column { display: grid; gap: 1rem; min-width: 0; }
.card { background: var(--card); border: 1px solid var(--border); border-radius: .5rem; padding: 1rem; min-width: 0; }
.card h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
.field { margin: 0 0 .85rem; min-width: 0; }
.field label, legend { display: block; font-weight: 600; margin-bottom: .25rem; }
.field.check { display: flex; gap: .5rem; align-items: center; }
.field.check label { margin: 0; font-weight: 400; }
.optional { font-weight: 400; color: var(--muted); }
input, select, textarea, button { font: inherit; color: inherit; }
input[type="text"], input[type="password"], input[type="number"], select, textarea {
  width: 100%; padding: .5rem .6rem; border: 1px solid var(--border); border-radius: .35rem;
  background: var(--bg); min-height: 2.6rem; }
textarea { resize: vertical; }
input[type="file"] { width: 100%; max-width: 100%; font-size: .9rem; }
input[aria-invalid="true"], select[aria-invalid="true"], textarea[aria-invalid="true"] { border-color: var(--error); border-width: 2px; }
input:disabled { opacity: .6; }
.row { display: flex; gap: .5rem; }
.row input { flex: 1; min-width: 0; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: .75rem; }
.pair[hidden] { display: none; }
fieldset.init { border: 1px solid var(--border); border-radius: .35rem; margin: 0 0 .85rem; padding: .5rem .75rem 0; min-width: 0; }
.init-preview { display: flex; gap: .75rem; align-items: center; margin-bottom: .75rem; }
.init-preview[hidden] { display: none; }
.init-preview img { max-width: 6rem; max-height: 6rem; border-radius: .25rem; }
.help { color: var(--muted); font-size: .875rem; margin: .25rem 0 0; }
.field-error { color: var(--error); font-weight: 600; font-size: .9rem; margin: .3rem 0 0; }
.field-error::before { content: "⚠ "; }
button { cursor: pointer; border-radius: .35rem; border: 1px solid var(--accent); background: var(--accent);
  color: var(--accent-text); padding: .55rem 1.1rem; min-height: 2.6rem; font-weight: 600; }
button.secondary { background: transparent; color: var(--accent); }
button.link { background: none; border: none; color: var(--accent); padding: .2rem .3rem; min-height: 0; text-decoration: underline; font-weight: 400; }
button:disabled { opacity: .55; cursor: progress; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin-top: .5rem; }
.quote { font-weight: 600; margin: .75rem 0 .25rem; }
.quote .bad { color: var(--error); }
.status { margin: 0 0 .5rem; }
.error-summary, .problem { border: 2px solid var(--error); background: var(--error-bg); border-radius: .35rem;
  padding: .6rem .8rem; margin: 0 0 1rem; }
.error-summary h3, .problem h3 { margin: 0 0 .25rem; font-size: 1rem; color: var(--error); }
.error-summary ul { margin: .25rem 0 0; padding-left: 1.2rem; }
.problem p { margin: .2rem 0; }
progress { width: 100%; height: 1.1rem; accent-color: var(--accent); }
.preview { margin: .75rem 0; }
.preview img { display: block; width: 100%; max-width: 24rem; height: auto; image-rendering: auto;
  border-radius: .35rem; border: 1px solid var(--border); filter: saturate(.9); }
.preview figcaption { color: var(--muted); font-size: .875rem; }
.gallery { list-style: none; padding: 0; margin: .75rem 0 0; display: grid; gap: .75rem;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, 14rem), 1fr)); }
.gallery figure { margin: 0; }
.gallery img { display: block; width: 100%; height: auto; border-radius: .35rem; border: 1px solid var(--border);
  background: repeating-conic-gradient(var(--border) 0 25%, transparent 0 50%) 0 0 / 16px 16px; }
.gallery figcaption { font-size: .9rem; margin-top: .35rem; }
.gallery .actions { margin-top: .35rem; }
.gallery .actions button { padding: .35rem .7rem; min-height: 2.2rem; font-size: .9rem; }
.details { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .9rem; margin: 1rem 0 0; font-size: .92rem; }
.details dt { color: var(--muted); }
.details dd { margin: 0; overflow-wrap: anywhere; }
.history { padding-left: 1.4rem; margin: 0; }
.history li { margin: .3rem 0; }
.history button { text-align: left; }
.history .meta { color: var(--muted); font-size: .85rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 30rem) {
  main { padding: .5rem; }
  .card { padding: .75rem; }
  .pair { gap: .5rem; }
}
@media (prefers-reduced-motion: reduce) { * { transition: none !important; animation: none !important; } }
`;
