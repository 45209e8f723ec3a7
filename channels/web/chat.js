// The web chat page (channels/webchat.py serves it). Plain JavaScript, no framework.
//
// What it keeps: a random session id and the chosen language, in sessionStorage only (gone
// when the tab closes); the conversation lives in the page (DOM) and nowhere else. No cookie.
// Quick exit (the button, or Esc three times within 2 s): tells the server to erase the
// conversation, clears the page and both storages, and replaces this history entry with a
// neutral page, so that Back does not come back here.
"use strict";

(() => {
  const SESSION_KEY = "chat-session";
  const LANGUAGE_KEY = "chat-language";
  const ESCAPES_NEEDED = 3;
  const ESCAPE_WINDOW_MS = 2000;
  const POLL_MS = 4000; // how often the page asks for messages pushed to it

  const config = JSON.parse(document.getElementById("page-words").textContent);
  const enabled = new Map(config.languages.map((item) => [item.code, item]));
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const input = $("message");
  const form = $("composer");

  let language = config.default;
  let leaving = false;
  let keyboardChoice = false; // a choice made with the keyboard: focus the next choices
  let queue = Promise.resolve();

  // -- storage (sessionStorage only; a browser that refuses it still chats) ------------------

  function stored(key) {
    try {
      return sessionStorage.getItem(key);
    } catch (_) {
      return null;
    }
  }

  function store(key, value) {
    try {
      sessionStorage.setItem(key, value);
    } catch (_) {
      /* private modes may refuse: the page still works for this visit */
    }
  }

  let memorySession = null;

  function sessionId() {
    let id = stored(SESSION_KEY) || memorySession;
    if (!id) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      store(SESSION_KEY, id);
    }
    memorySession = id;
    return id;
  }

  // -- the page's words and direction -----------------------------------------------------------

  function word(key) {
    return (config.words[language] || {})[key] || (config.words[config.default] || {})[key] || "";
  }

  function applyLanguage(code) {
    if (!enabled.has(code)) return;
    language = code;
    store(LANGUAGE_KEY, code);
    const root = document.documentElement;
    root.lang = code;
    root.dir = enabled.get(code).dir;
    document.querySelectorAll("[data-word]").forEach((el) => {
      el.textContent = word(el.dataset.word);
    });
    document.querySelectorAll("[data-word-placeholder]").forEach((el) => {
      el.placeholder = word(el.dataset.wordPlaceholder);
    });
    document.querySelectorAll("[data-who]").forEach((el) => {
      el.textContent = word(el.dataset.who) + ": ";
    });
    $("language").value = code;
  }

  // -- the message log ------------------------------------------------------------------------

  function scrollToEnd() {
    const area = $("conversation");
    area.scrollTop = area.scrollHeight;
  }

  function addEntry(kind, text, who) {
    const item = document.createElement("li");
    item.className = `msg ${kind}`;
    if (who) {
      const label = document.createElement("span");
      label.className = "visually-hidden";
      label.dataset.who = who;
      label.textContent = word(who) + ": ";
      item.append(label);
    }
    const body = document.createElement("p");
    body.dir = "auto";
    body.textContent = text;
    item.append(body);
    log.append(item);
    scrollToEnd();
    return item;
  }

  function retireChoices() {
    log.querySelectorAll(".choices button").forEach((b) => {
      b.disabled = true;
    });
  }

  function addChoices(item, buttons) {
    const group = document.createElement("div");
    group.className = "choices";
    group.setAttribute("role", "group");
    for (const button of buttons) {
      const el = document.createElement("button");
      el.type = "button";
      el.textContent = button.title;
      el.dir = "auto";
      el.addEventListener("click", (event) => choose(button.title, button.payload, event));
      group.append(el);
    }
    item.append(group);
  }

  function showBotMessages(messages) {
    retireChoices();
    let first = null;
    for (const message of messages) {
      if (message.language && message.language !== language) applyLanguage(message.language);
      const item = addEntry("bot", message.text, "web_bot");
      if (message.buttons && message.buttons.length) addChoices(item, message.buttons);
      first = first || item.querySelector(".choices button");
    }
    scrollToEnd();
    if (keyboardChoice) (first || input).focus();
    keyboardChoice = false;
  }

  // -- talking to the server ------------------------------------------------------------------

  async function post(body) {
    const reply = await fetch("webhook", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender: sessionId(), ...body }),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    if (!reply.ok) throw new Error(`status ${reply.status}`);
    return reply.json();
  }

  function send(body, shown) {
    if (shown) addEntry("you", shown, "web_you");
    const waiting = addEntry("waiting", word("web_waiting"));
    queue = queue.then(async () => {
      try {
        const messages = await post(body);
        if (!leaving) showBotMessages(messages);
      } catch (_) {
        if (!leaving) addEntry("error", word("web_error"));
      } finally {
        waiting.remove();
      }
    });
    return queue;
  }

  function choose(title, payload, event) {
    keyboardChoice = Boolean(event && event.detail === 0); // Enter or Space, not a tap
    const picked = payload.match(/^\/change_language(\{.*\})$/);
    if (picked) {
      try {
        applyLanguage(JSON.parse(picked[1]).language);
      } catch (_) {
        /* the server answers in the right language anyway */
      }
    }
    retireChoices();
    send({ message: payload }, title);
  }

  function chooseLanguage(code, event) {
    if (!enabled.has(code)) return;
    $("start").replaceChildren();
    choose(enabled.get(code).name, "/change_language" + JSON.stringify({ language: code }), event);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    $("start").replaceChildren();
    send({ message: text }, text);
  });

  $("language").addEventListener("change", (event) => chooseLanguage(event.target.value));

  // The first screen: the prompt in every enabled language and a button for each.
  function showStart() {
    const start = $("start");
    const prompt = document.createElement("p");
    prompt.className = "prompt";
    for (const item of config.languages) {
      const line = document.createElement("span");
      line.lang = item.code;
      line.dir = item.dir;
      line.textContent = item.prompt;
      prompt.append(line);
    }
    const group = document.createElement("div");
    group.className = "choices languages";
    group.setAttribute("role", "group");
    for (const item of config.languages) {
      const el = document.createElement("button");
      el.type = "button";
      el.lang = item.code;
      el.dir = item.dir;
      el.textContent = item.name;
      el.addEventListener("click", (event) => chooseLanguage(item.code, event));
      group.append(el);
    }
    start.replaceChildren(prompt, group);
  }

  // -- location (asked for only when the person presses the button) ---------------------------

  const locate = $("share-location");
  if ("geolocation" in navigator) {
    locate.hidden = false;
    locate.addEventListener("click", () => {
      navigator.geolocation.getCurrentPosition(
        (position) => {
          const { latitude, longitude } = position.coords;
          $("start").replaceChildren();
          send({ location: { latitude, longitude } }, word("web_share_location"));
        },
        () => addEntry("error", word("web_location_failed")),
        { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 },
      );
    });
  }

  // -- messages pushed to this session (a caseworker's replies), fetched every few seconds ----

  async function pollServer() {
    const id = stored(SESSION_KEY) || memorySession;
    if (!id || leaving) return; // no conversation yet, or leaving
    try {
      const reply = await fetch("poll", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: id }),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
      if (!reply.ok) return;
      const messages = await reply.json();
      if (messages.length && !leaving) showBotMessages(messages);
    } catch (_) {
      /* offline for a moment: the next poll tries again */
    }
  }

  setInterval(() => {
    queue = queue.then(pollServer); // after any message being sent, so the order holds
  }, POLL_MS);

  // -- quick exit -----------------------------------------------------------------------------

  function tellServer() {
    const id = stored(SESSION_KEY) || memorySession;
    if (!id) return; // made at the first message: nothing was said, nothing to erase
    const body = JSON.stringify({ sender: id, message: "/quick_exit" });
    let sent = false;
    try {
      sent = navigator.sendBeacon("webhook", new Blob([body], { type: "text/plain;charset=UTF-8" }));
    } catch (_) {
      sent = false;
    }
    if (!sent) {
      fetch("webhook", {
        method: "POST", body, keepalive: true, credentials: "omit",
        headers: { "Content-Type": "application/json" },
      }).catch(() => {});
    }
  }

  function quickExit() {
    if (leaving) return;
    leaving = true;
    tellServer();
    memorySession = null;
    try {
      sessionStorage.clear();
      localStorage.clear();
    } catch (_) {
      /* nothing stored */
    }
    document.title = "";
    document.body.replaceChildren();
    window.location.replace(config.quickExitUrl);
  }

  $("quick-exit").addEventListener("click", quickExit);

  let escapes = [];
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const now = Date.now();
    escapes = escapes.filter((t) => now - t < ESCAPE_WINDOW_MS);
    escapes.push(now);
    if (escapes.length >= ESCAPES_NEEDED) quickExit();
  }, true);

  // -- start ----------------------------------------------------------------------------------

  const remembered = stored(LANGUAGE_KEY);
  applyLanguage(enabled.has(remembered) ? remembered : config.default);
  if (!stored(SESSION_KEY)) showStart();
})();
