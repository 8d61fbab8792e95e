// The result view of an analysis or a comparison: view controls, the server's figures, hover and click on
// the main figure, and the Share button. The view lives in the URL query, so a link reopens it.

import { getJSON } from "./api.js";
import { renderControls } from "./dom.js";
import { hoverText } from "./hover.js";
import { draw } from "./plot.js";
import { initialView, permalink, queryToView, viewToQuery } from "./view.js";

/** Controls + figures of one result view; the view lives in the URL query so links reopen it. `extras`: other
 * page state kept in the URL and the share link (never sent to the figure API); returns `syncUrl()`. */
export function setupFigureView({ url, figureUrl, controls, figures, extras = {} }) {
  const figureBox = document.getElementById("figure");
  const stripBox = document.getElementById("strip");
  const auxBox = document.getElementById("aux");
  const view = initialView(controls || [], queryToView(window.location.search));
  const status = document.getElementById("share-status");
  const syncUrl = () => window.history.replaceState(null, "", `${url}${viewToQuery({ ...view, ...extras })}`);
  const show = async (answer) => {
    await draw(figureBox, answer.main);
    if (stripBox && answer.strip) await draw(stripBox, answer.strip);
    else if (stripBox && window.Plotly) window.Plotly.purge(stripBox);
    if (auxBox && answer.aux) await draw(auxBox, answer.aux);
    figureBox.dataset.rendered = String(Number(figureBox.dataset.rendered || 0) + 1);
  };
  const refresh = async () => {
    const query = viewToQuery(view);
    syncUrl();
    try {
      await show((await getJSON(`${figureUrl}${query}`)).figures);
      status.textContent = "";
    } catch (error) {
      status.textContent = error.message;
    }
  };
  const rowHint = document.getElementById("row-hint");
  if (rowHint) rowHint.hidden = !(controls || []).some((control) => control.name === "row");
  renderControls(document.getElementById("controls"), controls || [], view, (name, value) => {
    view[name] = value;
    refresh();
  });
  if (figures) {
    show(figures).then(() => {
      const info = document.getElementById("hover-info");
      figureBox.on("plotly_hover", (event) => {
        const point = event.points && event.points[0];
        if (info && point) info.textContent = hoverText(point);
      });
      figureBox.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        const positions = (figureBox.layout.meta && figureBox.layout.meta.positions) || [];
        if (!point || positions[point.y] === undefined || !("row" in view)) return;
        view.row = String(positions[point.y]);
        refresh();
      });
    });
  }
  document.getElementById("share-button").addEventListener("click", async () => {
    const link = permalink(window.location.origin, url, { ...view, ...extras });
    try {
      await navigator.clipboard.writeText(link);
      status.textContent = `Link copied: ${link}`;
    } catch {
      status.textContent = `Copy this link: ${link}`;
    }
    status.dataset.link = link;
  });
  return { syncUrl };
}
