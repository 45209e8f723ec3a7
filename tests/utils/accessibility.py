"""An accessibility check of a page in the browser tests: what a caseworker at a hotline desk
and a person on a cheap phone need, measured on the rendered page (no outside tool).

``audit(page)`` returns the problems found (an empty list is a pass):

- the document has a language and a title; images have a text alternative;
- every form control has a label (``<label for>``, a wrapping label, ``aria-label`` or
  ``aria-labelledby``), every button and link a name;
- every visible piece of text has a contrast of at least 4.5:1 with what is behind it (3:1 for
  large text: 24 px, or 18.66 px bold), WCAG 2.1's AA levels, with semi-transparent colours
  blended over their ancestors' backgrounds (text over a background image is skipped);
- ``focus_problems(page)`` tabs through the page: each element the keyboard reaches shows
  that it has the focus (an outline or a box shadow that is not there without the focus).

The page's Content-Security-Policy forbids eval, so the checks run as functions Playwright
passes whole (``page.evaluate`` with a function body is allowed: it uses the DevTools
protocol, not the page's eval).
"""

from __future__ import annotations

AUDIT_JS = r"""
() => {
  const problems = [];
  const describe = (el) => {
    const id = el.id ? "#" + el.id : "";
    const cls = el.className && typeof el.className === "string"
      ? "." + el.className.trim().split(/\s+/).join(".") : "";
    const text = (el.innerText || el.value || "").trim().slice(0, 40);
    return `<${el.tagName.toLowerCase()}${id}${cls}> "${text}"`;
  };
  const visible = (el) => {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.visibility !== "hidden" && style.display !== "none" && box.width > 0 &&
      box.height > 0 && !el.closest("[hidden]") && !el.closest(".visually-hidden");
  };
  if (!document.documentElement.lang) problems.push("the document has no lang");
  if (!document.title.trim()) problems.push("the document has no title");
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("image without alt: " + describe(img));
  }
  const labelled = (el) => (el.labels && el.labels.length > 0) || el.getAttribute("aria-label")
    || el.getAttribute("aria-labelledby") || el.getAttribute("title");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || !visible(el)) continue;
    if (el.type === "submit" || el.type === "button") continue;
    if (!labelled(el)) problems.push("control without a label: " + describe(el));
  }
  for (const el of document.querySelectorAll("button, a[href], [role=button]")) {
    if (!visible(el)) continue;
    const name = (el.innerText || "").trim() || el.getAttribute("aria-label") ||
      el.getAttribute("aria-labelledby") || el.getAttribute("title");
    if (!name) problems.push("button or link without a name: " + describe(el));
  }
  const parse = (color) => {
    const m = color.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const parts = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return {r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1};
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1});
  const background = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.backgroundImage && style.backgroundImage !== "none") return null;
      const color = parse(style.backgroundColor);
      if (color && color.a > 0) {
        layers.push(color);
        if (color.a >= 1) break;
      }
    }
    let result = {r: 255, g: 255, b: 255, a: 1};  // the canvas
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const luminance = (c) => {
    const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || seen.has(el) || !visible(el)) continue;
    seen.add(el);
    if (el.closest("option, script, style, noscript")) continue;
    if (el.closest(":disabled")) continue;
    const style = getComputedStyle(el);
    const back = background(el);
    const fore = parse(style.color);
    if (!back || !fore) continue;
    const text = over(fore, back);
    const [hi, lo] = [luminance(text), luminance(back)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) {
      problems.push(`contrast ${ratio.toFixed(2)}:1 < ${needed}:1 for ${describe(el)} ` +
                    `(${style.color} on rgb(${Math.round(back.r)}, ${Math.round(back.g)}, ${Math.round(back.b)}))`);
    }
  }
  return problems;
}
"""

FOCUS_JS = r"""
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const shows = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) ||
    (style.boxShadow && style.boxShadow !== "none");
  const id = el.id ? "#" + el.id : "";
  return {name: `<${el.tagName.toLowerCase()}${id}> "${(el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 40)}"`,
          shows: shows};
}
"""


def audit(page) -> list[str]:
    """The accessibility problems of the page as it is now (empty: none found)."""
    return page.evaluate(AUDIT_JS)


def focus_problems(page, presses: int = 40) -> list[str]:
    """Tabs ``presses`` times (or until the focus comes round again): the elements the
    keyboard reached without showing the focus. The page must have at least one."""
    reached, problems = [], []
    for _ in range(presses):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_JS)
        if state is None:
            continue
        if reached and state["name"] == reached[0]:
            break
        reached.append(state["name"])
        if not state["shows"]:
            problems.append(f"no visible focus on {state['name']}")
    if not reached:
        problems.append("the keyboard reaches nothing on the page")
    return problems
