// Hover read-out for matrix heatmaps.

/** "query tok (i) → key tok (j): value" from the axes' token labels, readable at any sentence length. */
export function hoverText(point) {
  const xLabels = (point.xaxis && point.xaxis.ticktext) || [];
  const yLabels = (point.yaxis && point.yaxis.ticktext) || [];
  const value = typeof point.z === "number" ? point.z.toFixed(4) : String(point.z);
  return `query ${yLabels[point.y] ?? ""} (${point.y}) → key ${xLabels[point.x] ?? ""} (${point.x}): ${value}`;
}
