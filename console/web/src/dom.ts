// DOM helpers. Every element of the console is made here, and every string
// becomes a text node or an attribute value: nothing is ever parsed as HTML
// (no innerHTML anywhere but richtext.ts, which takes only the relay's
// sanitized knowledge-base articles), so agent-reported text cannot become markup.
// Inline styles are refused too, because the relay's Content-Security-Policy
// forbids them; use classes (or el.style.x for computed widths).

export type Child = Node | string | number | bigint | null | undefined | false | Child[];

type Listener = (ev: Event) => void;

export interface Attrs {
  class?: string | undefined;
  /** data-* attributes, e.g. { testid: "fleet-table" } → data-testid. */
  data?: Record<string, string | undefined>;
  /** Event listeners, e.g. { click: fn }. */
  on?: Record<string, Listener>;
  [attr: string]: unknown;
}

// Attribute values that navigate or load: only our own routes, the relay's
// agent downloads (/download/NAME), blob: and data: images may go there,
// never a value that came from an agent.
const urlAttrs = new Set(["href", "src", "action", "formaction", "xlink:href"]);

function safeURL(v: string): boolean {
  return v.startsWith("#") || v.startsWith("blob:") || v.startsWith("data:image/png") || v === "data:," ||
    /^\/download\/[A-Za-z0-9._+~%-]*$/.test(v);
}

function setAttrs(el: Element, attrs: Attrs | null | undefined): void {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    switch (k) {
      case "class":
        el.setAttribute("class", String(v));
        continue;
      case "data":
        for (const [dk, dv] of Object.entries(v as Record<string, string | undefined>)) {
          if (dv !== undefined) (el as HTMLElement).dataset[dk] = dv;
        }
        continue;
      case "on":
        for (const [ev, fn] of Object.entries(v as Record<string, Listener>)) el.addEventListener(ev, fn);
        continue;
      case "style":
        throw new Error("inline styles are not allowed (Content-Security-Policy): use a class");
    }
    if (k.startsWith("on")) throw new Error(`inline handler ${k} is not allowed: use on: { … }`);
    const s = v === true ? "" : String(v);
    if (urlAttrs.has(k) && !safeURL(s)) throw new Error(`refusing ${k}=${JSON.stringify(s.slice(0, 40))}`);
    el.setAttribute(k, s);
  }
}

function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

/** h makes an HTML element: h("a", { href: "#/fleet" }, "Fleet"). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const svgNS = "http://www.w3.org/2000/svg";

/** s makes an SVG element (charts). */
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(svgNS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** text is a text node. */
export function text(v: string): Text {
  return document.createTextNode(v);
}

/** replace empties el and appends children. */
export function replace(el: Node & ParentNode, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** setText sets an element's text, if it changed (keeps selection and focus). */
export function setText(el: Node, v: string): void {
  if (el.textContent !== v) el.textContent = v;
}

/**
 * field is an agent-reported string shown in a single line: cut with an
 * ellipsis by CSS when too long, the whole value in the tooltip.
 */
export function field(v: string, cls = "clip"): HTMLSpanElement {
  return h("span", { class: cls, title: v.length > 24 ? v : undefined }, v || "–");
}

/** uid returns a unique id for label/aria wiring. */
let uidN = 0;
export function uid(prefix: string): string {
  uidN++;
  return `${prefix}-${uidN}`;
}

/** debounce delays fn until calls stop for ms. */
export function debounce<A extends unknown[]>(fn: (...a: A) => void, ms: number): ((...a: A) => void) & { cancel(): void } {
  let t: ReturnType<typeof setTimeout> | undefined;
  const d = (...a: A) => {
    if (t !== undefined) clearTimeout(t);
    t = setTimeout(() => {
      t = undefined;
      fn(...a);
    }, ms);
  };
  d.cancel = () => {
    if (t !== undefined) clearTimeout(t);
    t = undefined;
  };
  return d;
}
