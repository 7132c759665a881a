// Article HTML: the one place the console turns a string into markup.
//
// Only the knowledge base's rendered articles come here, and the relay has
// already rendered them without raw HTML (goldmark) and sanitized them
// (bluemonday's UGC policy, http/https/mailto links only; docs/adr 23).
// This is a third fence: the string is parsed inside a <template>, whose
// content is inert (no script runs, nothing loads), then every element
// and attribute not on a short allowlist is dropped and every URL checked,
// and only then is the fragment moved into the page. The relay's
// Content-Security-Policy (no inline script) is the fourth.

const allowedElements = new Set([
  "a", "abbr", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
  "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td",
  "tfoot", "th", "thead", "tr", "ul",
]);

const allowedAttrs: Record<string, Set<string>> = {
  a: new Set(["href", "title", "rel", "target"]),
  img: new Set(["src", "alt", "title", "width", "height"]),
  th: new Set(["align", "colspan", "rowspan"]),
  td: new Set(["align", "colspan", "rowspan"]),
  ol: new Set(["start"]),
  code: new Set(["class"]),
};

/** safeArticleURL allows http, https and mailto URLs and relative ones (in-console links). */
export function safeArticleURL(v: string): boolean {
  const s = v.trim().toLowerCase();
  const colon = s.indexOf(":");
  if (colon < 0) return true;
  const slash = s.search(/[/?#]/);
  if (slash >= 0 && slash < colon) return true; // "a/b:c" is relative
  return s.startsWith("http:") || s.startsWith("https:") || s.startsWith("mailto:");
}

function clean(node: Node): void {
  for (const child of Array.from(node.childNodes)) {
    if (child.nodeType === Node.TEXT_NODE) continue;
    if (child.nodeType !== Node.ELEMENT_NODE) {
      child.remove(); // comments ("raw HTML omitted"), processing instructions
      continue;
    }
    const el = child as Element;
    const tag = el.localName;
    if (el.namespaceURI !== "http://www.w3.org/1999/xhtml" || !allowedElements.has(tag)) {
      el.remove(); // with its content: script, style, svg, iframe… never reach here from the relay
      continue;
    }
    for (const attr of Array.from(el.attributes)) {
      const ok = allowedAttrs[tag]?.has(attr.name) ?? false;
      if (!ok || ((attr.name === "href" || attr.name === "src") && !safeArticleURL(attr.value))) el.removeAttribute(attr.name);
    }
    if (tag === "a" && el.hasAttribute("href")) {
      el.setAttribute("rel", "nofollow noreferrer noopener");
      if (!el.getAttribute("href")!.startsWith("#")) el.setAttribute("target", "_blank");
    }
    clean(el);
  }
}

/** articleFragment parses the relay's sanitized article HTML into a checked, inert fragment. */
export function articleFragment(html: string): DocumentFragment {
  const t = document.createElement("template");
  t.innerHTML = html;
  const frag = t.content;
  clean(frag);
  return document.importNode(frag, true);
}
