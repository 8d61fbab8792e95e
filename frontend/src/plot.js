// Draw a Plotly figure dict produced by the server, with PNG and SVG download buttons.

/** The Plotly config the server sent, plus an SVG twin of Plotly's own PNG download button. */
export function plotConfig(config, Plotly) {
  const filename = (config.toImageButtonOptions && config.toImageButtonOptions.filename) || "figure";
  const svgButton = {
    name: "Download plot as SVG",
    icon: Plotly.Icons.disk,
    click: (gd) => Plotly.downloadImage(gd, { format: "svg", filename }),
  };
  return { ...config, modeBarButtonsToAdd: [svgButton] };
}

export function draw(element, figure) {
  const Plotly = window.Plotly;
  return Plotly.react(element, figure.data, figure.layout, plotConfig(figure.config || {}, Plotly));
}
