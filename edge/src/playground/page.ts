/**
 * The playground's HTML. Static apart from the versioned asset URLs: everything dynamic is built by
 * the script from the API's answers, so no user text ever passes through this template.
 */

export interface PageAssets {
  script: string;
  style: string;
}

const field = (name: string, label: string, control: string, help?: string) => `
        <div class="field" id="field-${name}">
          <label for="f-${name}">${label}</label>
          ${control}
          ${help ? `<p class="help" id="help-${name}">${help}</p>` : ''}
          <p class="field-error" id="err-${name}" hidden></p>
        </div>`;

const described = (name: string, help = false) =>
  `aria-describedby="${help ? `help-${name} ` : ''}err-${name}"`;

export function renderPlaygroundPage(assets: PageAssets): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <meta name="referrer" content="no-referrer">
  <title>SD3 playground</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="${assets.style}">
  <script type="module" src="${assets.script}"></script>
</head>
<body>
  <a class="skip" href="#f-prompt">Skip to the prompt</a>
  <header class="top">
    <h1>SD3 playground</h1>
    <nav aria-label="Links"><a href="/docs">API reference</a> · <a href="/openapi.json">OpenAPI</a></nav>
  </header>
  <main>
    <div class="columns">
      <div class="column">
        <section class="card" aria-labelledby="key-heading">
          <h2 id="key-heading">API key</h2>
          ${field(
            'key',
            'Your API key',
            `<div class="row"><input id="f-key" type="password" autocomplete="off" spellcheck="false" autocapitalize="off" placeholder="sk_…" ${described('key', true)}>
          <button type="button" id="forget-key" class="secondary">Forget</button></div>`,
            "Kept in this tab's session storage only and sent to this server as a Bearer token.",
          )}
          <p id="key-status" class="status" role="status"></p>
        </section>

        <form id="gen-form" class="card" novalidate aria-labelledby="form-heading">
          <h2 id="form-heading">Generate</h2>
          <div id="error-summary" class="error-summary" role="alert" tabindex="-1" hidden></div>
          ${field(
            'prompt',
            'Prompt',
            `<textarea id="f-prompt" name="prompt" rows="3" required ${described('prompt', true)}></textarea>`,
            'Ctrl+Enter (⌘+Enter) generates.',
          )}
          ${field(
            'negative_prompt',
            'Negative prompt <span class="optional">(optional)</span>',
            `<textarea id="f-negative_prompt" name="negative_prompt" rows="2" ${described('negative_prompt')}></textarea>`,
          )}
          ${field('model', 'Model', `<select id="f-model" name="model" ${described('model', true)}></select>`, 'Paste a key to load the models and their prices.')}
          ${field(
            'aspect_ratio',
            'Size',
            `<select id="f-aspect_ratio" name="aspect_ratio" ${described('aspect_ratio')}>
            <option value="">Model default (square)</option>
            <option value="1:1">1:1 square</option>
            <option value="16:9">16:9 wide</option>
            <option value="21:9">21:9 ultra-wide</option>
            <option value="3:2">3:2 landscape</option>
            <option value="5:4">5:4 landscape</option>
            <option value="2:3">2:3 portrait</option>
            <option value="4:5">4:5 portrait</option>
            <option value="9:16">9:16 tall</option>
            <option value="9:21">9:21 ultra-tall</option>
            <option value="custom">Custom width × height</option>
          </select>`,
          )}
          <div class="pair" id="custom-size" hidden>
            ${field('width', 'Width (px)', `<input id="f-width" name="width" type="number" inputmode="numeric" min="16" step="16" ${described('width', true)}>`, 'A multiple of 16.')}
            ${field('height', 'Height (px)', `<input id="f-height" name="height" type="number" inputmode="numeric" min="16" step="16" ${described('height')}>`)}
          </div>
          <div class="pair">
            ${field('steps', 'Steps', `<input id="f-steps" name="steps" type="number" inputmode="numeric" min="1" step="1" ${described('steps')}>`)}
            ${field('guidance_scale', 'Guidance', `<input id="f-guidance_scale" name="guidance_scale" type="number" inputmode="decimal" min="0" max="30" step="0.5" ${described('guidance_scale')}>`)}
          </div>
          <div class="pair">
            ${field('seed', 'Seed', `<input id="f-seed" name="seed" type="number" inputmode="numeric" min="0" max="4294967295" step="1" placeholder="random" ${described('seed', true)}>`, 'Empty: a random seed (always shown with the result).')}
            ${field('n', 'Images', `<input id="f-n" name="n" type="number" inputmode="numeric" min="1" max="4" step="1" value="1" ${described('n')}>`)}
          </div>
          ${field(
            'output_format',
            'Format',
            `<select id="f-output_format" name="output_format" ${described('output_format')}>
            <option value="png">PNG</option><option value="jpeg">JPEG</option><option value="webp">WebP</option>
          </select>`,
          )}
          <fieldset class="init">
            <legend>Image to image <span class="optional">(optional)</span></legend>
            ${field('image', 'Initial image', `<input id="f-image" name="image" type="file" accept="image/png,image/jpeg,image/webp" ${described('image', true)}>`, 'PNG, JPEG or WebP, at most 10 MB.')}
            <div id="init-preview" class="init-preview" hidden>
              <img id="init-thumb" alt="The chosen initial image">
              <button type="button" id="clear-image" class="secondary">Remove image</button>
            </div>
            ${field('strength', 'Strength', `<input id="f-strength" name="strength" type="number" inputmode="decimal" min="0" max="1" step="0.05" value="0.6" disabled ${described('strength', true)}>`, '0 keeps the image, 1 ignores it.')}
          </fieldset>
          <div class="field check">
            <input id="f-previews" name="previews" type="checkbox" checked>
            <label for="f-previews">Show live previews while it runs</label>
          </div>
          <p id="quote" class="quote" aria-live="polite">Paste a key and write a prompt to see the price.</p>
          <div class="actions">
            <button type="submit" id="submit">Generate</button>
          </div>
          <p id="submit-status" class="status" role="status"></p>
        </form>
      </div>

      <div class="column">
        <section class="card" id="run" aria-labelledby="run-heading">
          <h2 id="run-heading" tabindex="-1">Result</h2>
          <p id="run-status" class="status" role="status" aria-live="polite">Nothing has run yet.</p>
          <div id="run-error" class="problem" role="alert" hidden></div>
          <div id="progress-wrap" hidden>
            <label for="run-progress" class="visually-hidden">Progress</label>
            <progress id="run-progress" max="1" value="0"></progress>
            <p id="progress-text" class="help"></p>
          </div>
          <figure id="preview-figure" class="preview" hidden>
            <img id="preview-image" alt="Live preview of the image in progress">
            <figcaption id="preview-caption"></figcaption>
          </figure>
          <div class="actions"><button type="button" id="cancel" class="secondary" hidden>Cancel</button></div>
          <ul id="gallery" class="gallery" aria-label="Generated images"></ul>
          <p id="action-status" class="help" role="status"></p>
          <dl id="run-details" class="details" hidden></dl>
        </section>

        <section class="card" aria-labelledby="history-heading">
          <h2 id="history-heading">This session's jobs</h2>
          <p id="history-empty" class="help">None yet.</p>
          <ol id="history" class="history"></ol>
          <div class="actions"><button type="button" id="clear-history" class="secondary" hidden>Clear history</button></div>
        </section>
      </div>
    </div>
  </main>
</body>
</html>
`;
}
