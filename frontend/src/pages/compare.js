// The compare page: several analyses of one input side by side, in one result view.

import { setupFigureView } from "../figureview.js";

export function setupComparePage(spec) {
  setupFigureView({ url: spec.url, figureUrl: spec.figure_url, controls: spec.controls, figures: spec.figures });
}
