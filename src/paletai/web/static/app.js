// The PaletAI console: hash routes (#/, #/login, #/register, #/create, #/play/ID, #/mine).
// Every value from the API goes in through textContent or attributes, never as HTML.
import { api, ApiError, token } from "./api.js";

const STAGES = ["queued", "generating", "validating", "cover", "publishing"];
const STAGE_LABELS = {
  queued: "Queued",
  generating: "Writing the game",
  validating: "Checking it runs",
  cover: "Drawing the cover",
  publishing: "Publishing",
};
const PAGE_SIZE = 20;
const POLL_MS = 500;
const view = document.getElementById("view");
let me = null; // the logged-in user (GET /auth/me), or null
let renderId = 0; // bumps on every route change, so stale async work stops

// h("div.card", {attr: value, onclick: fn}, child, "text", ...): a small DOM builder.
function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function show(...nodes) {
  view.replaceChildren(...nodes);
}

function notice(kind, text) {
  return h(`p.notice.${kind}`, { role: kind === "error" ? "alert" : "status" }, text);
}

function until(seconds) {
  const at = new Date(Date.now() + seconds * 1000);
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.ceil((seconds % 3600) / 60);
  const span = hours ? `${hours} h ${minutes} min` : `${minutes} min`;
  return `in ${span} (at ${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })})`;
}

function explain(err) {
  if (err instanceof ApiError && err.status === 429 && err.retryAfter) {
    return `${err.message} Your prompts come back ${until(err.retryAfter)}.`;
  }
  return err instanceof Error ? err.message : String(err);
}

async function loadMe() {
  me = null;
  if (!token.get()) return;
  try {
    me = await api("GET", "/auth/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) token.clear();
  }
}

function updateNav(route) {
  document.querySelectorAll("[data-auth]").forEach((el) => {
    el.hidden = (el.dataset.auth === "in") !== Boolean(me);
  });
  document.getElementById("who").textContent = me ? me.username : "";
  document.querySelectorAll("[data-nav]").forEach((el) => {
    if (el.dataset.nav === route) el.setAttribute("aria-current", "page");
    else el.removeAttribute("aria-current");
  });
}

function cover(game, big) {
  if (game.image_url) {
    return h("img.cover", { src: game.image_url, alt: `Cover of ${game.title}`, loading: big ? "eager" : "lazy" });
  }
  return h("div.cover.placeholder", { "aria-hidden": "true" }, game.title.slice(0, 1));
}

function tile(game) {
  return h(
    "a.tile",
    { href: `#/play/${encodeURIComponent(game.id)}`, "data-game": game.id },
    cover(game, false),
    h("span.tile-title", {}, game.title),
    h("span.tile-meta", {}, h("span", {}, `by ${game.author.username}`), h("span.likes", {}, `♥ ${game.likes_count}`)),
  );
}

// --- feed -------------------------------------------------------------------------------

function feedView(params) {
  const sort = params.get("sort") === "popular" ? "popular" : "newest";
  const grid = h("div.grid", { id: "feed" });
  const more = h("button.button.more", { type: "button", id: "more" }, "More games");
  const status = h("p.muted", { role: "status" });
  const mine = renderId;
  let cursor = null;
  let loading = false;
  let done = false;

  async function loadPage() {
    if (loading || done || mine !== renderId) return;
    loading = true;
    more.disabled = true;
    status.textContent = "Loading…";
    try {
      const q = new URLSearchParams({ sort, limit: String(PAGE_SIZE) });
      if (cursor) q.set("cursor", cursor);
      const page = await api("GET", `/games/feed?${q}`);
      if (mine !== renderId) return;
      grid.append(...page.items.map(tile));
      cursor = page.next_cursor;
      done = !cursor;
      status.textContent = grid.children.length ? "" : "No games yet: be the first to make one.";
    } catch (err) {
      status.textContent = explain(err);
    } finally {
      loading = false;
      more.disabled = false;
      more.hidden = done;
      // Observe again: a "More" button still in view after this page loads the next one.
      if (!done && mine === renderId) {
        observer.unobserve(more);
        observer.observe(more);
      }
    }
  }
  more.addEventListener("click", loadPage);
  const observer = new IntersectionObserver((entries) => {
    if (mine !== renderId) observer.disconnect();
    else if (entries.some((e) => e.isIntersecting)) loadPage();
  }, { rootMargin: "120px" });
  const tab = (name, label) =>
    h("a.tab", { href: name === "newest" ? "#/" : "#/?sort=popular", "aria-current": sort === name ? "page" : null }, label);
  show(
    h("section.hero", {},
      h("h1", {}, "Games made from a sentence"),
      h("p", {}, "Type an idea, get a small game you can play right here, then share it."),
      h("a.button.primary", { href: "#/create" }, "Make a game")),
    h("nav.tabs", { "aria-label": "Sort the feed" }, tab("newest", "Newest"), tab("popular", "Popular")),
    grid, status, more,
  );
  observer.observe(more);
  loadPage();
}

// --- accounts ---------------------------------------------------------------------------

function authView(mode) {
  const register = mode === "register";
  const message = h("div", { id: "auth-message" });
  const email = h("input", { id: "email", type: "email", name: "email", required: true, autocomplete: "email" });
  const password = h("input", {
    id: "password", type: "password", name: "password", required: true, minlength: register ? 8 : null,
    autocomplete: register ? "new-password" : "current-password",
  });
  const username = register
    ? h("input", { id: "username", name: "username", minlength: 3, maxlength: 32, autocomplete: "username", placeholder: "optional" })
    : null;
  const submit = h("button.button.primary", { type: "submit" }, register ? "Create account" : "Log in");
  const form = h("form.card.narrow", { id: "auth-form" },
    h("h1", {}, register ? "Create your account" : "Log in"),
    h("label", { for: "email" }, "Email"), email,
    username && h("label", { for: "username" }, "Username"), username,
    h("label", { for: "password" }, register ? "Password (8 characters or more)" : "Password"), password,
    message, submit,
    h("p.muted", {}, register ? "Already have an account? " : "New here? ",
      h("a", { href: register ? "#/login" : "#/register" }, register ? "Log in" : "Create an account")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    message.replaceChildren();
    try {
      const body = { email: email.value.trim(), password: password.value };
      if (register && username.value.trim()) body.username = username.value.trim();
      const result = await api("POST", register ? "/auth/register" : "/auth/login", body);
      token.set(result.access_token);
      await loadMe();
      location.hash = "#/create";
    } catch (err) {
      message.replaceChildren(notice("error", explain(err)));
    } finally {
      submit.disabled = false;
    }
  });
  show(form);
  email.focus();
}

function needLogin(what) {
  show(h("section.card.narrow", {},
    h("h1", {}, "Log in first"),
    h("p", {}, `You need an account to ${what}.`),
    h("p", {}, h("a.button.primary", { href: "#/login" }, "Log in"), " ", h("a.button", { href: "#/register" }, "Create an account"))));
}

// --- creating and remixing ---------------------------------------------------------------

function stageList() {
  const items = STAGES.map((stage) => h("li", { "data-stage": stage }, STAGE_LABELS[stage]));
  const list = h("ol.stages", { id: "stages", "aria-label": "Progress" }, items);
  list.mark = (current, failed) => {
    const at = current === "succeeded" ? STAGES.length : Math.max(0, STAGES.indexOf(current));
    items.forEach((li, i) => {
      li.className = i < at ? "done" : i === at ? (failed ? "failed" : "current") : "";
    });
  };
  return list;
}

// Poll a task until it ends, showing its stages; then show the game (or the task's error).
async function follow(taskId, panel) {
  const mine = renderId;
  const list = stageList();
  const status = h("p.muted", { role: "status" }, "Queued…");
  panel.replaceChildren(list, status);
  list.mark("queued");
  for (;;) {
    if (mine !== renderId) return;
    let task;
    try {
      task = await api("GET", `/tasks/${encodeURIComponent(taskId)}`);
    } catch (err) {
      status.replaceWith(notice("error", explain(err)));
      return;
    }
    if (task.status === "succeeded") {
      list.mark("succeeded");
      const game = await api("GET", `/games/${encodeURIComponent(task.game_id)}`);
      if (mine !== renderId) return;
      status.replaceWith(h("div.ready", { id: "ready" },
        notice("ok", `“${game.title}” is ready.`),
        playFrame(game),
        h("p", {}, h("a.button.primary", { href: `#/play/${encodeURIComponent(game.id)}` }, "Open its page"))));
      return;
    }
    if (task.status === "failed") {
      list.mark(task.stage, true);
      status.replaceWith(notice("error", `It did not work out: ${task.error || "the game could not be made"}. Try again, or reword the prompt.`));
      return;
    }
    list.mark(task.stage);
    status.textContent = `${STAGE_LABELS[task.stage] || task.stage}…`;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function promptForm({ id, label, placeholder, button, send, panel }) {
  const text = h("textarea", { id, name: "prompt", rows: 3, maxlength: 2000, required: true, placeholder });
  const message = h("div");
  const submit = h("button.button.primary", { type: "submit" }, button);
  const form = h("form.prompt", {}, h("label", { for: id }, label), text, message, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    submit.disabled = true;
    message.replaceChildren();
    try {
      const accepted = await send(text.value.trim());
      await loadMe();
      form.dispatchEvent(new CustomEvent("sent"));
      await follow(accepted.task_id, panel);
    } catch (err) {
      message.replaceChildren(notice("error", explain(err)));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function createView() {
  if (!me) return needLogin("make games");
  const remaining = h("p.muted", { id: "remaining" });
  const showRemaining = () => {
    remaining.textContent = `${me.prompts_remaining_today} of ${me.daily_prompt_limit} prompts left today`;
  };
  showRemaining();
  const panel = h("div.progress", { id: "progress" });
  const form = promptForm({
    id: "prompt", label: "Describe your game", button: "Make it",
    placeholder: "a snake game in neon colours · pong for two players · a memory game with fruits",
    send: (prompt) => api("POST", "/games", { prompt }), panel,
  });
  form.addEventListener("sent", showRemaining);
  show(h("section.card", {}, h("h1", {}, "Make a game"), remaining, form, panel));
  form.querySelector("textarea").focus();
}

// --- playing -----------------------------------------------------------------------------

function playFrame(game) {
  // allow-scripts only: the game runs in an opaque origin and can't touch the console's storage.
  return h("div.frame", {},
    h("iframe", { src: `/games/${encodeURIComponent(game.id)}/play`, title: `Play ${game.title}`, sandbox: "allow-scripts", id: "game-frame" }));
}

async function playView(gameId) {
  const mine = renderId;
  let game;
  try {
    game = await api("GET", `/games/${encodeURIComponent(gameId)}`);
  } catch (err) {
    show(h("section.card.narrow", {}, h("h1", {}, "Game not found"), notice("error", explain(err)), h("a.button", { href: "#/" }, "Back to the feed")));
    return;
  }
  if (mine !== renderId) return;
  document.title = `${game.title} · PaletAI`;
  const count = h("span", { id: "likes" }, String(game.likes_count));
  const countLabel = h("span", {}, "");
  const likeButton = h("button.button.like", { type: "button", id: "like", "aria-pressed": String(game.liked_by_me) });
  const likeMessage = h("span");
  const paintLike = () => {
    likeButton.textContent = game.liked_by_me ? "♥ Liked" : "♡ Like";
    likeButton.setAttribute("aria-pressed", String(game.liked_by_me));
    count.textContent = String(game.likes_count);
    countLabel.textContent = game.likes_count === 1 ? " like" : " likes";
  };
  paintLike();
  likeButton.addEventListener("click", async () => {
    if (!me) {
      location.hash = "#/login";
      return;
    }
    likeButton.disabled = true;
    try {
      const state = await api(game.liked_by_me ? "DELETE" : "POST", `/games/${encodeURIComponent(game.id)}/like`);
      game.liked_by_me = state.liked;
      game.likes_count = state.likes_count;
      paintLike();
      likeMessage.replaceChildren();
    } catch (err) {
      likeMessage.replaceChildren(notice("error", explain(err)));
    } finally {
      likeButton.disabled = false;
    }
  });
  const parent = h("p.muted", { id: "parent" });
  if (game.parent_id) {
    api("GET", `/games/${encodeURIComponent(game.parent_id)}`).then(
      (p) => parent.replaceChildren("Remix of ", h("a", { href: `#/play/${encodeURIComponent(p.id)}` }, p.title), ` by ${p.author.username}`),
      () => parent.replaceChildren("Remix of a game that was deleted"),
    );
  }
  const remixPanel = h("div.progress", { id: "remix-progress" });
  const remix = me
    ? promptForm({
      id: "remix-prompt", label: "Remix it: what should change?", button: "Remix",
      placeholder: "make it faster · two players · with cats",
      send: (prompt) => api("POST", `/games/${encodeURIComponent(game.id)}/remix`, { prompt }), panel: remixPanel,
    })
    : h("p.muted", {}, h("a", { href: "#/login" }, "Log in"), " to like and remix this game.");
  show(h("section.play", {},
    playFrame(game),
    h("aside.info", {},
      h("h1", {}, game.title),
      h("p.muted", {}, `by ${game.author.username}`),
      parent,
      h("p", { id: "description" }, game.description),
      game.controls && h("p.controls", {}, h("strong", {}, "Controls: "), game.controls),
      h("p.actions", {}, likeButton, " ", h("span.count", {}, count, countLabel), " ", h("a.button", { href: `/g/${encodeURIComponent(game.id)}` }, "Share page"), likeMessage),
      h("details", {}, h("summary", {}, "The prompt"), h("p", {}, game.prompt)),
      h("div.card.remix", {}, remix, remixPanel),
    )));
}

// --- my games ----------------------------------------------------------------------------

async function mineView() {
  if (!me) return needLogin("see your games");
  const mine = renderId;
  const list = h("ul.mine", { id: "my-games" });
  const status = h("div", { id: "mine-status" });
  show(h("section.card", {}, h("h1", {}, "My games"), status, list));
  try {
    let cursor = null;
    do {
      const q = new URLSearchParams({ limit: "50" });
      if (cursor) q.set("cursor", cursor);
      const page = await api("GET", `/users/me/games?${q}`);
      if (mine !== renderId) return;
      for (const game of page.items) {
        const remove = h("button.button.danger", { type: "button", "aria-label": `Delete ${game.title}` }, "Delete");
        const row = h("li", { "data-game": game.id }, cover(game, false),
          h("a", { href: `#/play/${encodeURIComponent(game.id)}` }, game.title),
          h("span.muted", {}, `♥ ${game.likes_count}`), remove);
        remove.addEventListener("click", async () => {
          if (!confirm(`Delete “${game.title}” for good?`)) return;
          remove.disabled = true;
          try {
            await api("DELETE", `/games/${encodeURIComponent(game.id)}`);
            row.remove();
            status.replaceChildren(notice("ok", `Deleted “${game.title}”.`));
          } catch (err) {
            remove.disabled = false;
            status.replaceChildren(notice("error", explain(err)));
          }
        });
        list.append(row);
      }
      cursor = page.next_cursor;
    } while (cursor);
    if (!list.children.length) status.replaceChildren(h("p.muted", {}, "No games yet. ", h("a", { href: "#/create" }, "Make one")));
  } catch (err) {
    status.replaceChildren(notice("error", explain(err)));
  }
}

// --- routing -----------------------------------------------------------------------------

async function route() {
  renderId += 1;
  document.title = "PaletAI";
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const name = parts[0] || "feed";
  updateNav(name);
  // A new page: start at its top, and let screen readers and Tab start from its content.
  window.scrollTo(0, 0);
  view.focus({ preventScroll: true });
  if (name === "feed") feedView(params);
  else if (name === "login" || name === "register") authView(name);
  else if (name === "create") createView();
  else if (name === "play" && parts[1]) await playView(decodeURIComponent(parts[1]));
  else if (name === "mine") await mineView();
  else show(h("section.card.narrow", {}, h("h1", {}, "Nothing here"), h("a.button", { href: "#/" }, "Back to the feed")));
}

document.getElementById("logout").addEventListener("click", () => {
  token.clear();
  me = null;
  // Setting the hash re-renders through hashchange, unless the feed is already showing.
  if (location.hash === "#/" || location.hash === "") route();
  else location.hash = "#/";
});
window.addEventListener("hashchange", route);
loadMe().then(route);
