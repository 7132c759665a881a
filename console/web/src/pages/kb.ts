// The knowledge base: articles technicians write for each other and, once
// published (tier 2), for users' Get help page.
//   #/kb?q=…          the list, or search hits for q (best first)
//   #/kb/new          the editor for a new article
//   #/kb/<slug>       one article
//   #/kb/<slug>/edit  the editor
// Article bodies are Markdown rendered by the relay into sanitized HTML,
// shown through richtext.ts; the editor's preview asks the relay to render
// (RenderPreview), so what the preview shows is exactly what readers get.
// Everything else (titles, tags, snippets) is only ever text (dom.ts).

import { checkSession, explain, isCanceled, kbClient } from "../api";
import { debounce, h, replace, uid } from "../dom";
import { fmtTime, tsDate } from "../format";
import { Role } from "../gen/deskside/v1/console_pb";
import { ArticleState, type Article } from "../gen/deskside/v1/kb_pb";
import { kvList, notice, type Page, type Session } from "../page";
import { articleFragment } from "../richtext";

const stateLabel = (a: Article) => (a.state === ArticleState.PUBLISHED ? "Published" : "Draft");

function stateBadge(a: Article): HTMLElement {
  return h("span", { class: a.state === ArticleState.PUBLISHED ? "kb-state kb-published" : "kb-state kb-draft", data: { testid: "kb-state" } }, stateLabel(a));
}

function articleLink(a: Article): HTMLElement {
  return h("a", { href: "#/kb/" + encodeURIComponent(a.slug), data: { testid: "kb-link" } }, a.title);
}

/** kbPage routes within the knowledge base; rest is the path after "/kb". */
export function kbPage(session: Session, rest: string, query: string): Page {
  const m = /^\/([a-z0-9-]+)(\/edit)?$/.exec(rest);
  if (rest === "/new") return editorPage(session, "");
  if (m && m[2]) return editorPage(session, m[1]!);
  if (m) return articlePage(session, m[1]!);
  return listPage(query);
}

function listPage(query: string): Page {
  const life = new AbortController();
  const q = new URLSearchParams(query).get("q") ?? "";
  const searchID = uid("kb-q");
  const input = h("input", { id: searchID, type: "search", value: q, maxlength: 200, placeholder: "printer jam", autocomplete: "off", data: { testid: "kb-search" } });
  const results = h("div", { "aria-live": "polite", data: { testid: "kb-results" } }, h("p", { class: "muted" }, "Loading…"));
  const form = h("form", { class: "toolbar", role: "search" },
    h("div", { class: "filter" }, h("label", { for: searchID }, "Search articles"), input),
    h("button", { type: "submit", class: "btn btn-primary" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = input.value.trim();
    location.hash = v ? "#/kb?" + new URLSearchParams({ q: v }).toString() : "#/kb";
  });

  const load = async () => {
    try {
      if (q.trim()) {
        const r = await kbClient.searchArticles({ query: q, limit: 50 }, { signal: life.signal });
        if (r.hits.length === 0) {
          replace(results, h("p", null, "No article matches. Try other words, or ", h("a", { href: "#/kb/new" }, "write one"), "."));
          return;
        }
        replace(results, h("ol", { class: "kb-hits" }, r.hits.map((hit) => {
          const a = hit.article!;
          return h("li", { class: "kb-hit", data: { testid: "kb-hit" } },
            h("div", null, articleLink(a), " ", stateBadge(a)),
            h("p", { class: "kb-snippet" }, hit.snippet.map((p) => (p.match ? h("mark", null, p.text) : p.text))));
        })));
        return;
      }
      const r = await kbClient.listArticles({ limit: 200 }, { signal: life.signal });
      if (r.articles.length === 0) {
        replace(results, h("p", null, "No articles yet. ", h("a", { href: "#/kb/new" }, "Write the first one"), "."));
        return;
      }
      replace(results, h("div", { class: "table-wrap" }, h("table", { class: "grid", data: { testid: "kb-table" } },
        h("thead", null, h("tr", null, h("th", null, "Title"), h("th", null, "State"), h("th", null, "Category"), h("th", null, "Tags"), h("th", null, "Updated"))),
        h("tbody", null, r.articles.map((a) => h("tr", null,
          h("td", null, articleLink(a)), h("td", null, stateBadge(a)), h("td", null, a.category || "–"),
          h("td", null, a.tags.join(", ") || "–"), h("td", null, fmtTime(tsDate(a.updated)))))))));
    } catch (e) {
      if (isCanceled(e)) return;
      checkSession(e);
      replace(results, notice("error", explain(e)));
    }
  };
  void load();
  return {
    title: "Knowledge base",
    el: h("div", { class: "page", data: { testid: "kb-page" } },
      h("div", { class: "page-head" }, h("h1", null, "Knowledge base"),
        h("div", { class: "page-actions" }, h("a", { href: "#/kb/new", class: "btn btn-primary", data: { testid: "kb-new" } }, "New article"))),
      form, results),
    dispose: () => life.abort(),
  };
}

function articlePage(session: Session, slug: string): Page {
  const life = new AbortController();
  const body = h("div", { class: "page" }, h("p", { class: "muted" }, "Loading…"));
  const status = h("div", { class: "page-status", "aria-live": "polite" });
  const run = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      if (isCanceled(e)) return;
      checkSession(e);
      replace(status, notice("error", explain(e)));
    }
  };
  const draw = (a: Article) => {
    const actions = h("div", { class: "page-actions" },
      h("a", { href: `#/kb/${encodeURIComponent(a.slug)}/edit`, class: "btn", data: { testid: "kb-edit" } }, "Edit"));
    if (session.me.role >= Role.TIER2) {
      const publish = a.state === ArticleState.PUBLISHED;
      const btn = h("button", { type: "button", class: "btn", data: { testid: "kb-publish" } }, publish ? "Unpublish" : "Publish");
      btn.addEventListener("click", () => void run(async () => {
        btn.disabled = true;
        const ref = { slug: a.slug };
        const r = publish ? await kbClient.unpublishArticle({ article: ref }, { signal: life.signal }) : await kbClient.publishArticle({ article: ref }, { signal: life.signal });
        replace(status, notice("ok", publish ? "The article is a draft again: only technicians see it." : "Published: users see it on the Get help page."));
        draw(r.article!);
      }));
      actions.append(btn);
    }
    if (session.me.role >= Role.ADMIN) {
      const del = h("button", { type: "button", class: "btn btn-danger", data: { testid: "kb-delete" } }, "Delete");
      del.addEventListener("click", () => {
        if (!confirm(`Delete “${a.title}” and its ticket links?`)) return;
        void run(async () => {
          await kbClient.deleteArticle({ article: { slug: a.slug } }, { signal: life.signal });
          location.hash = "#/kb";
        });
      });
      actions.append(del);
    }
    replace(body,
      h("div", { class: "page-head" }, h("h1", { data: { testid: "kb-title" } }, a.title), actions),
      status,
      kvList([
        ["State", stateBadge(a)],
        ["Category", a.category],
        ["Tags", a.tags.join(", ")],
        ["Version", `${a.version} (by ${a.updatedBy}, ${fmtTime(tsDate(a.updated))})`],
        ["Tickets", a.tickets.join(", ")],
      ]),
      h("article", { class: "kb-body", data: { testid: "kb-body" } }, articleFragment(a.bodyHtml)));
  };
  void run(async () => draw((await kbClient.getArticle({ article: { slug } }, { signal: life.signal })).article!));
  return { title: "Article", el: body, dispose: () => life.abort() };
}

function editorPage(_session: Session, slug: string): Page {
  const life = new AbortController();
  const field = (label: string, testid: string, attrs: Record<string, unknown>) => {
    const id = uid(testid);
    const input = h("input", { id, type: "text", autocomplete: "off", data: { testid }, ...attrs });
    return { input, el: h("div", { class: "form-row" }, h("label", { for: id }, label), input) };
  };
  const title = field("Title", "kb-edit-title", { maxlength: 200, required: true });
  const category = field("Category", "kb-edit-category", { maxlength: 64 });
  const tags = field("Tags (comma-separated)", "kb-edit-tags", { maxlength: 600 });
  const bodyID = uid("kb-body");
  const source = h("textarea", { id: bodyID, class: "kb-source", rows: 20, spellcheck: "true", data: { testid: "kb-edit-body" } });
  const preview = h("div", { class: "kb-body kb-preview", "aria-live": "polite", data: { testid: "kb-preview" } });
  const status = h("div", { class: "page-status", "aria-live": "polite", data: { testid: "kb-edit-status" } });
  const save = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "kb-save" } }, slug ? "Save" : "Create draft");
  let version = 0n;

  let seq = 0;
  const render = async () => {
    const mine = ++seq;
    try {
      const r = await kbClient.renderPreview({ bodyMarkdown: source.value }, { signal: life.signal });
      if (mine === seq) replace(preview, articleFragment(r.bodyHtml));
    } catch (e) {
      if (isCanceled(e)) return;
      checkSession(e);
      if (mine === seq) replace(preview, notice("error", "No preview: " + explain(e)));
    }
  };
  const later = debounce(() => void render(), 250);
  source.addEventListener("input", () => later());

  const form = h("form", { class: "kb-editor" },
    title.el, h("div", { class: "kb-meta" }, category.el, tags.el),
    h("div", { class: "kb-split" },
      h("div", { class: "form-row" }, h("label", { for: bodyID }, "Markdown"), source),
      h("div", { class: "form-row" }, h("span", { class: "label" }, "Preview"), preview)),
    h("div", { class: "form-actions" }, save, h("a", { href: slug ? "#/kb/" + encodeURIComponent(slug) : "#/kb", class: "btn btn-quiet" }, "Cancel")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    save.disabled = true;
    const content = {
      title: title.input.value, bodyMarkdown: source.value, category: category.input.value,
      tags: tags.input.value.split(",").map((t) => t.trim()).filter((t) => t),
    };
    void (async () => {
      try {
        const r = slug
          ? await kbClient.updateArticle({ article: { slug }, version, ...content }, { signal: life.signal })
          : await kbClient.createArticle(content, { signal: life.signal });
        location.hash = "#/kb/" + encodeURIComponent(r.article!.slug);
      } catch (err) {
        if (isCanceled(err)) return;
        checkSession(err);
        replace(status, notice("error", explain(err)));
      } finally {
        save.disabled = false;
      }
    })();
  });

  if (slug) {
    void (async () => {
      try {
        const a = (await kbClient.getArticle({ article: { slug } }, { signal: life.signal })).article!;
        title.input.value = a.title;
        category.input.value = a.category;
        tags.input.value = a.tags.join(", ");
        source.value = a.bodyMarkdown;
        version = a.version;
        replace(preview, articleFragment(a.bodyHtml));
      } catch (e) {
        if (isCanceled(e)) return;
        checkSession(e);
        replace(status, notice("error", explain(e)));
      }
    })();
  }
  return {
    title: slug ? "Edit article" : "New article",
    el: h("div", { class: "page", data: { testid: "kb-editor" } },
      h("div", { class: "page-head" }, h("h1", null, slug ? "Edit article" : "New article")),
      h("p", { class: "muted" }, "Markdown: headings, lists, links, code, tables. Raw HTML is dropped. New articles are drafts; tier 2 publishes them."),
      status, form),
    dispose: () => {
      later.cancel();
      life.abort();
    },
  };
}
