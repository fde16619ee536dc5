/* A bar chart in plain SVG: no library, no network. barChart(container, labels, values, options). */
"use strict";

var SVG_NS = "http://www.w3.org/2000/svg";

function svgElement(name, attrs) {
  var el = document.createElementNS(SVG_NS, name);
  Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
  return el;
}

/* Draws one bar per value (negative bars go below the zero line and are red), a zero axis,
   the largest value as a scale mark and up to ~12 labels under the bars. */
function barChart(container, labels, values, options) {
  options = options || {};
  var width = 800, height = 240, left = 50, bottom = 30, top = 10;
  var svg = svgElement("svg", {viewBox: "0 0 " + width + " " + height, role: "img",
                               "aria-label": options.title || "chart"});
  var max = Math.max.apply(null, values.concat([0]));
  var min = Math.min.apply(null, values.concat([0]));
  var span = (max - min) || 1;
  var plot = height - bottom - top;
  var y = function (v) { return top + (max - v) / span * plot; };
  var step = (width - left) / Math.max(values.length, 1);
  var every = Math.ceil(values.length / 12);
  svg.appendChild(svgElement("line", {x1: left, x2: width, y1: y(0), y2: y(0), "class": "axis"}));
  var scale = svgElement("text", {x: 2, y: y(max) + 10});
  scale.textContent = max.toFixed(2);
  svg.appendChild(scale);
  values.forEach(function (v, i) {
    var x = left + i * step + step * 0.15;
    var bar = svgElement("rect", {x: x, width: step * 0.7, y: Math.min(y(v), y(0)),
                                  height: Math.max(Math.abs(y(v) - y(0)), 1),
                                  "class": v < 0 ? "bar negative" : "bar"});
    var tip = svgElement("title");
    tip.textContent = labels[i] + ": " + v;
    bar.appendChild(tip);
    svg.appendChild(bar);
    if (i % every === 0) {
      var label = svgElement("text", {x: x, y: height - 10});
      label.textContent = labels[i];
      svg.appendChild(label);
    }
  });
  container.replaceChildren(svg);
  return svg;
}
