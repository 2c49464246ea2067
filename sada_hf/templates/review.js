// The review page: data map, suspects, class pairs, marks (kept in localStorage) and their export as the
// decisions file. Everything it shows comes from the JSON block written by sada_hf/review.py.
"use strict";
const data = JSON.parse(document.getElementById("sada-data").textContent);
const ex = data.examples;
const count = ex.row.length;
const storageKey = "sada-review:" + data.key;
const marks = JSON.parse(localStorage.getItem(storageKey) || "{}"); // row -> {action, label}
const filter = { show: "suspects", cls: "", region: "", pair: null };
const cards = new Map(); // position -> its card in the grid
let selected = null; // position of the selected example

const $ = (id) => document.getElementById(id);
const name = (c) => data.classes[c];
const thumbSrc = (p) => "data:image/jpeg;base64," + data.thumbs[ex.thumb[p]];
const suspects = ex.suspect.reduce((sum, s) => sum + s, 0);

function element(tag, props, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

// ---- marks ---------------------------------------------------------------------------------------

function mark(p, action, label) {
  if (action === null) delete marks[ex.row[p]];
  else marks[ex.row[p]] = { action, label: action === "relabel" ? label : null };
  localStorage.setItem(storageKey, JSON.stringify(marks));
  if (cards.has(p)) paintCard(p);
  showSelected();
  showSummary();
}

function relabel(p, label) {
  mark(p, label === ex.given[p] ? "keep" : "relabel", label);
}

function markText(p) {
  const m = marks[ex.row[p]];
  if (!m) return "";
  return m.action === "relabel" ? "relabel to " + name(m.label) : m.action;
}

function csvCell(text) {
  return /[",\n]/.test(text) ? '"' + text.replaceAll('"', '""') + '"' : text;
}

function decisionsCsv() {
  const position = new Map(ex.row.map((row, p) => [row, p]));
  const header = data.has_ids ? "row,id,given_label,action,label" : "row,given_label,action,label";
  const lines = Object.keys(marks).map(Number).sort((a, b) => a - b).map((row) => {
    const p = position.get(row), m = marks[row];
    const cells = [row, ex.given[p], m.action, m.action === "relabel" ? m.label : ""];
    if (data.has_ids) cells.splice(1, 0, csvCell(ex.id[p]));
    return cells.join(",");
  });
  return [header, ...lines].join("\n") + "\n";
}

function exportDecisions() {
  const blob = new Blob([decisionsCsv()], { type: "text/csv" });
  const link = element("a", { href: URL.createObjectURL(blob), download: data.decisions_file });
  document.body.append(link);
  link.click();
  link.remove();
}

// ---- summary, selection --------------------------------------------------------------------------

function showSummary() {
  const marked = Object.keys(marks).length;
  $("summary").replaceChildren(
    element("span", { id: "n-examples", textContent: count }), " training examples; ",
    element("span", { id: "n-suspects", textContent: suspects }), ` suspects (rule ${data.cutoff}), ranked by ${data.ranking}; thumbnails of `,
    element("span", { id: "n-thumbs", textContent: data.thumbs.length }), " examples; ",
    element("span", { id: "n-marked", textContent: marked }), " marked.",
  );
}

function select(p) {
  if (selected !== null && cards.has(selected)) cards.get(selected).classList.remove("selected");
  selected = p;
  if (cards.has(p)) {
    cards.get(p).classList.add("selected");
    cards.get(p).scrollIntoView({ block: "nearest" });
  }
  showSelected();
}

function showSelected() {
  if (selected === null) return $("selected").replaceChildren("Nothing selected.");
  const p = selected;
  const choice = element("select", { id: "relabel" }, element("option", { value: "", textContent: "relabel to..." }));
  data.classes.forEach((c, i) => choice.append(element("option", { value: i, textContent: c })));
  choice.onchange = () => choice.value !== "" && relabel(p, Number(choice.value));
  const id = data.has_ids ? ` (${ex.id[p]})` : "";
  $("selected").replaceChildren(
    element("b", { textContent: `Row ${ex.row[p]}${id}: ` }),
    `${name(ex.given[p])} -> ${name(ex.suggested[p])}, AUM ${ex.aum[p]}, right ${ex.correctness[p]}% of its steps, `,
    `${data.regions[ex.region[p]]}. `, element("span", { id: "selected-mark", textContent: markText(p) || "unmarked" }), " ", choice,
  );
}

// ---- filters, class pairs, grid ------------------------------------------------------------------

function matches(p) {
  if (ex.thumb[p] < 0 || ex.suspect[p] !== (filter.show === "suspects" ? 1 : 0)) return false;
  if (filter.cls !== "" && ex.given[p] !== Number(filter.cls) && ex.suggested[p] !== Number(filter.cls)) return false;
  if (filter.region !== "" && ex.region[p] !== Number(filter.region)) return false;
  return !filter.pair || (ex.given[p] === filter.pair[0] && ex.suggested[p] === filter.pair[1]);
}

function paintCard(p) {
  const card = cards.get(p);
  const m = marks[ex.row[p]];
  card.className = "card" + (m ? " " + m.action : "") + (p === selected ? " selected" : "");
  card.querySelector(".mark").textContent = markText(p);
}

function makeCard(p) {
  const button = (text, action) => {
    const b = element("button", { textContent: text, className: action });
    b.onclick = (event) => { event.stopPropagation(); select(p); action === "relabel" ? relabel(p, ex.suggested[p]) : mark(p, action); };
    return b;
  };
  const card = element("div", { className: "card", title: `row ${ex.row[p]}` },
    element("img", { src: thumbSrc(p), alt: `row ${ex.row[p]}` }),
    element("div", { textContent: `#${p + 1} row ${ex.row[p]}` }),
    element("div", { textContent: `${name(ex.given[p])} -> ${name(ex.suggested[p])}` }),
    element("div", { textContent: `AUM ${ex.aum[p]} right ${ex.correctness[p]}%` }),
    element("div", { className: "mark" }),
    button("keep", "keep"), button("drop", "drop"), button("relabel", "relabel"));
  card.dataset.row = ex.row[p];
  card.onclick = () => select(p);
  cards.set(p, card);
  paintCard(p);
  return card;
}

function showGrid() {
  cards.clear();
  const shown = [];
  for (let p = 0; p < count; p++) if (matches(p)) shown.push(makeCard(p));
  $("grid").replaceChildren(...shown);
  const nothing = filter.show === "suspects" && suspects === 0 ? "No suspects: no training example meets the rule " + data.cutoff + "."
    : "No example with a thumbnail matches these filters.";
  $("empty").textContent = nothing;
  $("empty").hidden = shown.length > 0;
  $("pair-filter").textContent = filter.pair ? `pair ${name(filter.pair[0])} -> ${name(filter.pair[1])}` : "";
  document.querySelectorAll("#pairs tbody tr").forEach((tr) => tr.classList.toggle("active", filter.pair !== null && tr.dataset.pair === filter.pair.join(",")));
}

function showPairs() {
  const counts = new Map();
  for (let p = 0; p < count; p++) {
    if (ex.suspect[p] && ex.given[p] !== ex.suggested[p]) {
      const key = ex.given[p] + "," + ex.suggested[p];
      counts.set(key, (counts.get(key) || 0) + 1);
    }
  }
  const rows = [...counts].sort((a, b) => b[1] - a[1]).slice(0, data.max_pairs).map(([key, n]) => {
    const pair = key.split(",").map(Number);
    const tr = element("tr", {}, element("td", { textContent: name(pair[0]) }), element("td", { textContent: name(pair[1]) }),
      element("td", { textContent: n }));
    tr.dataset.pair = key;
    tr.onclick = () => {
      filter.pair = filter.pair && filter.pair.join(",") === key ? null : pair;
      filter.show = $("show").value = "suspects";
      showGrid();
    };
    return tr;
  });
  $("pairs").tBodies[0].replaceChildren(...rows);
}

// ---- data map ------------------------------------------------------------------------------------

const canvas = $("map"), context = canvas.getContext("2d");
const pad = 28, width = canvas.width - pad - 6, height = canvas.height - pad - 6;
// The variability axis ends at the next 0.05 above the largest (per mille; a probability's is at most 0.5).
const maxVariability = Math.ceil(ex.variability.reduce((a, b) => Math.max(a, b), 1) / 50) * 50;
const px = ex.variability.map((v) => pad + (v / maxVariability) * width);
const py = ex.confidence.map((c) => 6 + (1 - c / 1000) * height);

function drawMap() {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.strokeStyle = "#999";
  context.strokeRect(pad, 6, width, height);
  context.fillStyle = "#555";
  context.font = "10px sans-serif";
  context.fillText("1", pad - 10, 12);
  context.fillText("0", pad - 10, 6 + height);
  context.fillText((maxVariability / 1000).toFixed(2), pad + width - 20, canvas.height - 10);
  context.fillText("variability", pad + width / 2 - 20, canvas.height - 10);
  context.save();
  context.translate(12, 6 + height / 2 + 25);
  context.rotate(-Math.PI / 2);
  context.fillText("confidence", 0, 0);
  context.restore();
  for (let p = count - 1; p >= 0; p--) { // the most suspicious drawn last, on top
    const right = ex.correctness[p] / 100;
    context.fillStyle = `rgba(${Math.round(220 * (1 - right))}, 60, ${Math.round(220 * right)}, 0.55)`;
    context.fillRect(px[p] - 1, py[p] - 1, 3, 3);
  }
  context.strokeStyle = "rgba(0, 0, 0, 0.4)";
  context.lineWidth = 0.7;
  for (let p = 0; p < count; p++) {
    if (ex.suspect[p]) { context.beginPath(); context.arc(px[p], py[p], 2.5, 0, 2 * Math.PI); context.stroke(); }
  }
}

function nearest(event) {
  const box = canvas.getBoundingClientRect();
  const x = event.clientX - box.left, y = event.clientY - box.top;
  let best = null, bestDistance = 36; // within 6 pixels
  for (let p = 0; p < count; p++) {
    const d = (px[p] - x) ** 2 + (py[p] - y) ** 2;
    if (d < bestDistance) { best = p; bestDistance = d; }
  }
  return best;
}

canvas.onmousemove = (event) => {
  const p = nearest(event), tooltip = $("tooltip");
  tooltip.hidden = p === null;
  if (p === null) return;
  const image = ex.thumb[p] >= 0 ? element("img", { src: thumbSrc(p) }) : element("i", { textContent: "no thumbnail" });
  tooltip.replaceChildren(image, `row ${ex.row[p]}: ${name(ex.given[p])} -> ${name(ex.suggested[p])}`);
  tooltip.style.left = event.clientX + 12 + "px";
  tooltip.style.top = event.clientY + 12 + "px";
};
canvas.onmouseleave = () => { $("tooltip").hidden = true; };
canvas.onclick = (event) => { const p = nearest(event); if (p !== null) select(p); };

// ---- keyboard, controls --------------------------------------------------------------------------

function step(by) {
  const positions = [...cards.keys()];
  if (positions.length === 0) return;
  const at = positions.indexOf(selected);
  select(positions[Math.min(Math.max(at + by, 0), positions.length - 1)]);
}

document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "SELECT" || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  if (key === "j") return step(-1);
  if (key === "l") return step(1);
  if (selected === null) return;
  if (key === "k") mark(selected, "keep");
  else if (key === "d") mark(selected, "drop");
  else if (key === "s") relabel(selected, ex.suggested[selected]);
  else if (key === "u") mark(selected, null);
});

data.classes.forEach((c, i) => $("class").append(element("option", { value: i, textContent: c })));
$("show").onchange = () => { filter.show = $("show").value; showGrid(); };
$("class").onchange = () => { filter.cls = $("class").value; showGrid(); };
$("region").onchange = () => { filter.region = $("region").value; showGrid(); };
$("clear").onclick = () => {
  Object.assign(filter, { cls: "", region: "", pair: null });
  $("class").value = $("region").value = "";
  showGrid();
};
$("export").onclick = exportDecisions;

showSummary();
showPairs();
showGrid();
showSelected();
drawMap();
