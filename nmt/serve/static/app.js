// The demo page: pick a model, type text, see translations with their attention (a heatmap
// and token strips that follow the mouse) or a classifier's label with its attended tokens;
// or type the start of a translation and let the model complete it, a word at a time.
// Every string from the user or the model goes into the page through textContent, never
// as HTML.
"use strict";

const SPM = "\u2581"; // SentencePiece's word-start mark
const HEAT = "220, 70, 40"; // attention colour, r, g, b
const $ = (id) => document.getElementById(id);
let models = [];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function heat(weight) {
  const alpha = Math.max(0, Math.min(1, weight));
  return `rgba(${HEAT}, ${alpha.toFixed(3)})`;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new Error(`the server cannot be reached (${error.message})`);
  }
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON: reported below */ }
  if (!response.ok) {
    throw new Error((data && data.detail) || `${response.status} ${response.statusText}`);
  }
  return data;
}

// -- tokens as people read them (as nmt.evaluation.plots labels them) ---------------------
function visible(text) {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g,
    (c) => "U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0"));
}

function isSpecial(token) { return /^<[a-z]+>$/.test(token); }

/** {text, wordStart} for one token; subword: the token list is SentencePiece pieces. */
function piece(token, subword) {
  if (isSpecial(token)) return { text: token, wordStart: true };
  if (subword) {
    if (token === SPM) return { text: "\u2423", wordStart: true };
    if (token.startsWith(SPM)) return { text: visible(token.slice(1).replaceAll(SPM, " ")), wordStart: true };
    return { text: visible(token.replaceAll(SPM, " ")), wordStart: false };
  }
  return { text: token === " " ? "\u2423" : (visible(token) || "\u2205"), wordStart: false };
}

function axisLabel(token, subword) {
  const p = piece(token, subword);
  return subword && !p.wordStart ? "\u00b7" + p.text : p.text;
}

function isSubword(tokens) { return tokens.some((t) => t.includes(SPM)); }

/** Subword pieces: a gap before each word, none inside one ("Où" is "O" + "ù", not "O ù"). */
function wordSpacing(span, p, index) {
  if (p.wordStart) {
    if (index > 0) span.style.marginLeft = "0.35rem";
  } else {
    span.classList.add("cont");
  }
}

// -- the model picker --------------------------------------------------------------------
function currentModel() { return models.find((m) => m.name === $("model").value); }

function describe(model) {
  const a = model.architecture || {};
  const parts = [model.task];
  if (a.cell) parts.push(`${a.bidirectional ? "bi" : ""}${a.cell.toUpperCase()} ${a.hidden_size}`);
  if (a.attention) parts.push(`${a.attention} attention`);
  const toks = Object.values(model.tokenizers || {}).map((t) => `${t.type} ${t.vocab_size}`);
  if (toks.length) parts.push(toks.join(" / "));
  if (model.parameters) parts.push(`${(model.parameters / 1e6).toFixed(1)}M parameters`);
  const t = model.training || {};
  if (t.steps !== undefined) parts.push(`${t.steps.toLocaleString()} steps`);
  if (t.monitor && t.best_score !== undefined) parts.push(`best ${t.monitor} ${t.best_score.toFixed(3)}`);
  if (model.labels) parts.push(`labels: ${model.labels.join(", ")}`);
  return parts.join(" \u00b7 ");
}

function onModelChange() {
  const model = currentModel();
  if (!model) return;
  const translation = model.task === "translation";
  $("model-info").textContent = describe(model);
  $("run").textContent = translation ? "Translate" : "Classify";
  $("decoding").hidden = !translation;
  $("text").placeholder = translation ? "The cat is sleeping on the bed." : "WINNER! Claim your free prize now.";
  $("results").replaceChildren();
  hideError();
  $("completion").hidden = !translation;
  resetCompletion();
}

async function loadModels() {
  try {
    const data = await api("/models");
    models = data.models;
  } catch (error) {
    showError(`cannot list the models: ${error.message}`);
    return;
  }
  const select = $("model");
  for (const task of ["translation", "classification"]) {
    const group = el("optgroup");
    group.label = task;
    for (const m of models.filter((m) => m.task === task)) {
      const option = el("option", "", m.name);
      option.value = m.name;
      group.append(option);
    }
    if (group.children.length) select.append(group);
  }
  select.addEventListener("change", onModelChange);
  onModelChange();
  $("run").disabled = models.length === 0;
}

function showStrategyOptions() {
  const strategy = $("strategy").value;
  for (const label of document.querySelectorAll("#decoding label[data-for]")) {
    label.hidden = !label.dataset.for.split(" ").includes(strategy);
  }
}

// -- errors and status -------------------------------------------------------------------
function showError(message) { $("error").textContent = message; $("error").hidden = false; }
function hideError() { $("error").hidden = true; $("error").textContent = ""; }

// -- running -----------------------------------------------------------------------------
function texts() {
  return $("text").value.split("\n").filter((line) => line.trim() !== "");
}

function decodingRequest(lines, model) {
  const strategy = $("strategy").value;
  const number = (id) => Number($(id).value);
  const body = { text: lines, model: model.name, strategy, attention: true };
  if (strategy === "beam") {
    Object.assign(body, { beam_size: number("beam_size"), length_penalty: number("length_penalty"), n_best: number("n_best") });
  } else if (strategy === "sample") {
    Object.assign(body, {
      temperature: number("temperature"), top_k: number("top_k"), top_p: number("top_p"),
      seed: number("seed"), n_best: number("n_best"),
    });
  }
  return body;
}

async function run() {
  const model = currentModel();
  const lines = texts();
  hideError();
  if (!model) return;
  if (lines.length === 0) { showError("type a sentence first"); return; }
  $("run").disabled = true;
  $("status").textContent = "working\u2026";
  const started = performance.now();
  try {
    const results = $("results");
    if (model.task === "translation") {
      const data = await api("/translate", decodingRequest(lines, model));
      results.replaceChildren(...data.translations.map(translationCard));
    } else {
      const data = await api("/classify", { text: lines, model: model.name });
      results.replaceChildren(...data.results.map((r) => classificationCard(r, model)));
    }
    const ms = Math.round(performance.now() - started);
    $("status").textContent = `${lines.length} ${lines.length === 1 ? "text" : "texts"} in ${ms} ms`;
  } catch (error) {
    $("status").textContent = "";
    showError(error.message);
  } finally {
    $("run").disabled = false;
  }
}

// -- prefix completion (interactive translation) -----------------------------------------
// The user types the start of the translation of the first line; the server decodes with
// that prefix forced (POST /translate "prefix") and the page shows the typed part apart from
// the generated rest. Tab (or the button) takes the rest's next word into the prefix.
const COMPLETE_DELAY_MS = 300; // a pause in typing this long asks for a completion
let completionTimer = null;
let completionsAsked = 0; // numbers the requests: an answer older than the latest is dropped
let completion = null; // {prefix: the field's text it answers, typed, rest}

/** The completed `text` split into the part the typed prefix covers and the generated rest:
 * their longest common start, so a character the tokenizer normalised ends the typed part
 * rather than hiding the whole completion. */
function splitCompletion(prefix, text) {
  let n = 0;
  while (n < prefix.length && n < text.length && prefix[n] === text[n]) n++;
  return { prefix, typed: text.slice(0, n), rest: text.slice(n) };
}

/** The first word of the generated rest with the spaces before it ("" if none): what Tab takes. */
function nextWord(rest) {
  const match = rest.match(/^\s*\S+/);
  return match ? match[0] : "";
}

function showPrefixError(message) { $("prefix-error").textContent = message; $("prefix-error").hidden = false; }
function hidePrefixError() { $("prefix-error").hidden = true; $("prefix-error").textContent = ""; }

function renderCompletion() {
  $("completed").querySelector(".typed").textContent = completion ? completion.typed : "";
  $("completed").querySelector(".generated").textContent = completion ? completion.rest : "";
  $("accept").disabled = !completion || nextWord(completion.rest) === "";
}

function resetCompletion() {
  clearTimeout(completionTimer);
  completionsAsked++; // an answer on its way is for what was there before
  completion = null;
  hidePrefixError();
  renderCompletion();
}

function scheduleCompletion() {
  clearTimeout(completionTimer);
  completionTimer = setTimeout(complete, COMPLETE_DELAY_MS);
}

async function complete() {
  clearTimeout(completionTimer);
  const model = currentModel();
  if (!model || model.task !== "translation") return;
  const [line] = texts();
  const prefix = $("prefix").value;
  const asked = ++completionsAsked;
  if (line === undefined) {
    completion = null;
    renderCompletion();
    showPrefixError("type a sentence to translate first (the first line is completed)");
    return;
  }
  try {
    const data = await api("/translate", { ...decodingRequest([line], model), prefix, attention: false });
    if (asked !== completionsAsked) return;
    hidePrefixError();
    completion = splitCompletion(prefix, data.translations[0].text);
  } catch (error) {
    if (asked !== completionsAsked) return;
    completion = null;
    showPrefixError(error.message);
  }
  renderCompletion();
}

/** Take the next generated word into the prefix and ask for what follows; false if there is none. */
function acceptNextWord() {
  const word = completion ? nextWord(completion.rest) : "";
  if (!word) return false;
  const prefix = completion.typed + word;
  $("prefix").value = prefix;
  completion = splitCompletion(prefix, completion.typed + completion.rest); // shown until the answer comes
  renderCompletion();
  complete();
  return true;
}

function onPrefixKey(event) {
  if (event.key === "Enter") {
    event.preventDefault();
    complete();
    return;
  }
  if (event.key !== "Tab" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
  if (completion && completion.prefix === $("prefix").value) {
    if (acceptNextWord()) event.preventDefault(); // nothing left to take: Tab moves on
  } else if (texts().length > 0 && $("prefix-error").hidden) {
    event.preventDefault(); // the completion shown is older than the text: ask now, the next Tab takes
    complete();
  }
}

// -- a translation: hypotheses, token strips and the heatmap ------------------------------
function translationCard(t) {
  const card = el("article", "card translation");
  card.append(el("p", "source", t.source));
  if (t.truncated) card.append(el("p", "note", "The source was longer than the model's limit and was cut."));
  const list = el("ol", "hyps");
  const view = el("div", "attention");
  t.hypotheses.forEach((hyp, index) => {
    const item = el("li");
    item.append(el("span", "hyp-text", hyp.text || "(empty)"));
    if (hyp.score !== null && hyp.score !== undefined) item.append(el("span", "score", `score ${hyp.score.toFixed(3)}`));
    item.addEventListener("click", () => {
      for (const other of list.children) other.classList.remove("selected");
      item.classList.add("selected");
      view.replaceChildren(...attentionView(t.source_tokens || [], hyp));
    });
    list.append(item);
    if (index === 0) {
      item.classList.add("selected");
      view.replaceChildren(...attentionView(t.source_tokens || [], hyp));
    }
  });
  card.append(list, view);
  return card;
}

function strip(what, tokens) {
  const row = el("div", "strip");
  row.append(el("span", "what", what));
  const subword = isSubword(tokens);
  const spans = tokens.map((token, i) => {
    const p = piece(token, subword);
    const span = el("span", "tok", p.text);
    if (subword) wordSpacing(span, p, i);
    row.append(span);
    return span;
  });
  return { row, spans };
}

function attentionView(sourceTokens, hyp) {
  if (!hyp.attention || !hyp.tokens || sourceTokens.length === 0) return [];
  const weights = hyp.attention;
  const src = strip("source", sourceTokens);
  const tgt = strip("output", hyp.tokens);
  const readout = el("div", "readout muted", "Point at an output token, a source token or a cell.");
  const grid = el("div", "heatmap");
  grid.style.gridTemplateColumns = `auto repeat(${sourceTokens.length}, 1.6rem)`;
  const srcSub = isSubword(sourceTokens);
  const tgtSub = isSubword(hyp.tokens);
  grid.append(el("span"));
  const cols = sourceTokens.map((token) => { const c = el("span", "col", axisLabel(token, srcSub)); grid.append(c); return c; });
  const rows = [];
  const cells = weights.map((row, i) => {
    const label = el("span", "row", axisLabel(hyp.tokens[i] ?? "", tgtSub));
    rows.push(label);
    grid.append(label);
    return row.map((w, j) => {
      const cell = el("span", "cell");
      cell.style.background = heat(w);
      cell.title = `${axisLabel(hyp.tokens[i] ?? "", tgtSub)} \u2190 ${axisLabel(sourceTokens[j], srcSub)}: ${w.toFixed(3)}`;
      cell.dataset.i = i;
      cell.dataset.j = j;
      grid.append(cell);
      return cell;
    });
  });

  let active = [];
  function clear() {
    for (const node of active) node.classList.remove("active");
    active = [];
    for (const s of src.spans) s.style.background = "";
    for (const s of tgt.spans) s.style.background = "";
  }
  function mark(...nodes) { for (const n of nodes) if (n) { n.classList.add("active"); active.push(n); } }
  function focusRow(i) { // output token i: shade the source by where it looked
    clear();
    weights[i].forEach((w, j) => { src.spans[j].style.background = heat(w); });
    mark(tgt.spans[i], rows[i]);
    const [j] = argmax(weights[i]);
    readout.textContent = `\u201c${axisLabel(hyp.tokens[i], tgtSub)}\u201d looked most at \u201c${axisLabel(sourceTokens[j], srcSub)}\u201d (${weights[i][j].toFixed(3)})`;
  }
  function focusColumn(j) { // source token j: shade the output by how much it was looked at
    clear();
    weights.forEach((row, i) => { if (tgt.spans[i]) tgt.spans[i].style.background = heat(row[j]); });
    mark(src.spans[j], cols[j]);
    readout.textContent = `\u201c${axisLabel(sourceTokens[j], srcSub)}\u201d: attention it received from each output token`;
  }
  function focusCell(i, j) {
    focusRow(i);
    mark(cols[j], cells[i][j], src.spans[j]);
    readout.textContent = `\u201c${axisLabel(hyp.tokens[i], tgtSub)}\u201d \u2190 \u201c${axisLabel(sourceTokens[j], srcSub)}\u201d: ${weights[i][j].toFixed(3)}`;
  }
  tgt.spans.forEach((s, i) => { if (i < weights.length) s.addEventListener("mouseenter", () => focusRow(i)); });
  rows.forEach((r, i) => r.addEventListener("mouseenter", () => focusRow(i)));
  src.spans.forEach((s, j) => s.addEventListener("mouseenter", () => focusColumn(j)));
  cols.forEach((c, j) => c.addEventListener("mouseenter", () => focusColumn(j)));
  grid.addEventListener("mouseover", (event) => {
    const cell = event.target.closest(".cell");
    if (cell) focusCell(Number(cell.dataset.i), Number(cell.dataset.j));
  });
  for (const area of [grid, src.row, tgt.row]) area.addEventListener("mouseleave", clear);
  return [src.row, tgt.row, readout, grid];
}

function argmax(values) {
  let best = 0;
  values.forEach((v, i) => { if (v > values[best]) best = i; });
  return [best, values[best]];
}

// -- a classification: label, probabilities, attended tokens ------------------------------
function classificationCard(result, model) {
  const card = el("article", "card classification");
  const head = el("p");
  head.append(el("span", "label", result.label), document.createTextNode(` ${(100 * result.probability).toFixed(1)}%`));
  card.append(head);
  const probs = el("div", "probs");
  for (const label of model.labels) {
    const p = result.probabilities[label] ?? 0;
    const line = el("div", "prob");
    const bar = el("div", "bar");
    const fill = el("span");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    bar.append(fill);
    line.append(el("span", "", label), bar, el("span", "score", `${(100 * p).toFixed(1)}%`));
    probs.append(line);
  }
  card.append(probs);
  const subword = isSubword(result.tokens);
  const top = Math.max(...result.attention, 1e-9);
  const text = el("div", "highlighted");
  const readout = el("div", "readout muted", "Tokens are shaded by their attention weight; point at one.");
  result.tokens.forEach((token, i) => {
    const p = piece(token, subword);
    const span = el("span", "tok", p.text);
    if (subword) wordSpacing(span, p, i);
    span.style.background = heat(result.attention[i] / top);
    span.title = `${result.attention[i].toFixed(4)}`;
    span.addEventListener("mouseenter", () => {
      readout.textContent = `\u201c${p.text}\u201d: attention ${result.attention[i].toFixed(4)} (rank ${rank(result.attention, i)} of ${result.attention.length})`;
    });
    text.append(span);
  });
  if (result.truncated) card.append(el("p", "note", "The text was longer than the model reads and was cut."));
  card.append(text, readout);
  return card;
}

function rank(values, i) { return values.filter((v) => v > values[i]).length + 1; }

// -- wiring ------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("run").addEventListener("click", run);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(); }
  });
  $("strategy").addEventListener("change", showStrategyOptions);
  showStrategyOptions();
  $("prefix").addEventListener("input", scheduleCompletion);
  $("prefix").addEventListener("keydown", onPrefixKey);
  $("complete").addEventListener("click", complete);
  $("accept").addEventListener("click", () => { acceptNextWord(); $("prefix").focus(); });
  $("text").addEventListener("input", () => { // a new source: the completion shown is for the old one
    if ($("prefix").value !== "" || completion || !$("prefix-error").hidden) scheduleCompletion();
  });
  $("decoding").addEventListener("change", () => { if (completion) scheduleCompletion(); });
  loadModels();
});
