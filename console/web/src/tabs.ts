// Tabs as the WAI-ARIA tabs pattern: a tablist of buttons, one panel each;
// the selected tab is the only one in the tab order (roving tabindex), and
// Left/Right/Home/End move between tabs and select them.

import { h, uid, type Child } from "./dom";

export interface TabSpec {
  key: string;
  label: string;
  panel: HTMLElement;
}

export interface Tabs {
  /** list is the tablist (put it above the panels). */
  list: HTMLElement;
  /** panels are the tab panels, in order. */
  panels: HTMLElement[];
  /** select shows tab key (no-op for an unknown key). */
  select(key: string, focus?: boolean): void;
  readonly selected: string;
}

/** tabs builds a tablist; onSelect hears every change of tab (not the initial one). */
export function tabs(label: string, specs: TabSpec[], initial: string, onSelect: (key: string) => void, extra?: Child): Tabs {
  const base = uid("tab");
  let selected = specs.some((s) => s.key === initial) ? initial : specs[0]!.key;
  const buttons = specs.map((s) => h("button", {
    type: "button", role: "tab", id: `${base}-${s.key}`, class: "tab",
    "aria-controls": `${base}-${s.key}-panel`, data: { testid: `device-tab-${s.key}`, tab: s.key },
  }, s.label));
  const panels = specs.map((s) => {
    s.panel.id = `${base}-${s.key}-panel`;
    s.panel.setAttribute("role", "tabpanel");
    s.panel.setAttribute("aria-labelledby", `${base}-${s.key}`);
    s.panel.classList.add("tab-panel");
    return s.panel;
  });
  const list = h("div", { class: "tabs" }, h("div", { class: "tablist", role: "tablist", "aria-label": label }, buttons), extra);

  const draw = () => {
    specs.forEach((s, i) => {
      const on = s.key === selected;
      buttons[i]!.setAttribute("aria-selected", String(on));
      buttons[i]!.tabIndex = on ? 0 : -1;
      panels[i]!.hidden = !on;
    });
  };
  const select = (key: string, focus = false) => {
    const i = specs.findIndex((s) => s.key === key);
    if (i < 0) return;
    if (focus) buttons[i]!.focus();
    if (key === selected) return;
    selected = key;
    draw();
    onSelect(key);
  };
  buttons.forEach((b, i) => {
    b.addEventListener("click", () => select(specs[i]!.key));
    b.addEventListener("keydown", (e) => {
      let j = -1;
      if (e.key === "ArrowRight") j = (i + 1) % specs.length;
      else if (e.key === "ArrowLeft") j = (i - 1 + specs.length) % specs.length;
      else if (e.key === "Home") j = 0;
      else if (e.key === "End") j = specs.length - 1;
      if (j < 0) return;
      e.preventDefault();
      select(specs[j]!.key, true);
    });
  });
  draw();
  return {
    list, panels, select,
    get selected() {
      return selected;
    },
  };
}
